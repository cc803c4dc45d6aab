"""The evaluator reads earlier outcomes from the ledger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.producers.ledger_outcomes import LedgerOutcomes
from dunning.producers.outcomes import OutcomeKind
from dunning.records import DialOutcome, Suppression
from tests.factories import T0, make_intent


def test_delivered_unanswered_and_opt_out_come_from_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    sms = make_intent(Channel.SMS, account_id="acct-1", step="early.sms.d1")
    call = make_intent(Channel.VOICE, account_id="acct-1", step="early.voice.d3")
    other = make_intent(Channel.SMS, account_id="acct-2")
    ledger.record_published([sms, call, other], now=T0)
    for intent, ref in ((sms, "SM1"), (call, "CA1"), (other, "SM2")):
        claim = ledger.claim(intent, worker="w", now=T0, reconcile_after_s=60)
        ledger.record_sent(
            intent.intent_id, claim.attempt, provider_ref=ref, status="queued", detail={}, now=T0
        )
    ledger.record_receipt("SM1", "delivered", channel=Channel.SMS, rank=30, now=T0)
    ledger.record_receipt("SM2", "delivered", channel=Channel.SMS, rank=30, now=T0)
    ledger.record_receipt(
        "CA1", "no-answer", channel=Channel.VOICE, rank=40, now=T0,
        dial_outcome=DialOutcome.NO_ANSWER,
    )  # fmt: skip
    ledger.add_suppression(Suppression(sms.person_id, Channel.EMAIL, "opt_out", "email", T0))

    outcomes = LedgerOutcomes(ledger).outcomes("acct-1", since=T0 - timedelta(days=1))

    assert outcomes.delivered(Channel.SMS, since=T0 - timedelta(days=1)) == 1
    assert outcomes.delivered(Channel.SMS, since=T0 + timedelta(seconds=1)) == 0
    assert outcomes.unanswered_calls(since=T0 - timedelta(days=1)) == 1
    assert [e.kind for e in outcomes.events if e.kind is OutcomeKind.OPT_OUT] == [
        OutcomeKind.OPT_OUT
    ]
    ledger.close()
