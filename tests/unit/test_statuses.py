"""Ranked receipt statuses and their effect on the ledger: only forward, duplicates and early
callbacks tolerated, the unknown sweep, the summary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger import receipts_store as store
from dunning.receipts import statuses
from dunning.records import DialOutcome, IntentState
from tests.factories import T0, make_intent


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()


def _sent(ledger: Ledger, intent: ContactIntent, ref: str, *, minutes: int = 0) -> None:
    at = T0 + timedelta(minutes=minutes)
    ledger.record_published([intent], now=at)
    claim = ledger.claim(intent, worker="w", now=at, reconcile_after_s=900)
    ledger.record_sent(intent.intent_id, claim.attempt, provider_ref=ref, status="queued",
                       detail={}, now=at)  # fmt: skip


def _receipt(
    ledger: Ledger,
    channel: Channel,
    ref: str,
    status: str,
    *,
    minutes: int = 1,
    intent_id: str | None = None,
    dial: DialOutcome | None = None,
) -> store.ReceiptOutcome:
    return ledger.store_receipt(
        provider_ref=ref,
        channel=channel,
        status=status,
        rank=statuses.rank(channel, status),
        now=T0 + timedelta(minutes=minutes),
        intent_id=intent_id,
        raw={"status": status},
        dial_outcome=dial,
    )


@pytest.mark.parametrize(
    ("channel", "order"),
    [
        (Channel.SMS, ["queued", "sent", "delivered"]),
        (Channel.VOICE, ["initiated", "ringing", "in-progress", "completed"]),
        (Channel.EMAIL, ["accepted", "delivered", "complained"]),
        (Channel.LETTER, ["rendered", "dispatched", "printed", "mailed", "returned"]),
    ],
)
def test_ranks_increase_along_each_channels_lifecycle(channel: Channel, order: list[str]) -> None:
    ranks = [statuses.rank(channel, s) for s in order]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


def test_finals_share_the_top_rank_and_unknown_statuses_rank_zero() -> None:
    assert statuses.rank(Channel.SMS, "delivered") == statuses.rank(Channel.SMS, "undelivered")
    assert statuses.is_final(Channel.VOICE, "busy")
    assert not statuses.is_final(Channel.SMS, "sent")
    assert statuses.rank(Channel.SMS, "teleported") == 0
    assert statuses.normalise(" Answered ") == "in-progress"
    assert statuses.rank(Channel.VOICE, "answered") == statuses.rank(Channel.VOICE, "in-progress")


def test_out_of_order_callbacks_never_move_backwards(ledger: Ledger) -> None:
    intent = make_intent()
    _sent(ledger, intent, "SM1")
    assert _receipt(ledger, Channel.SMS, "SM1", "delivered", minutes=2).kind == "applied"
    late = _receipt(ledger, Channel.SMS, "SM1", "sent", minutes=3)
    assert late.kind == "stored"
    assert late.state is IntentState.DELIVERED
    assert ledger.get_state(intent.intent_id) is IntentState.DELIVERED


def test_a_second_final_status_does_not_overwrite_the_first(ledger: Ledger) -> None:
    intent = make_intent()
    _sent(ledger, intent, "SM2")
    _receipt(ledger, Channel.SMS, "SM2", "undelivered")
    assert _receipt(ledger, Channel.SMS, "SM2", "delivered", minutes=2).kind == "stored"
    assert ledger.get_state(intent.intent_id) is IntentState.UNDELIVERED


def test_duplicates_change_nothing(ledger: Ledger) -> None:
    intent = make_intent()
    _sent(ledger, intent, "SM3")
    first = _receipt(ledger, Channel.SMS, "SM3", "delivered")
    again = _receipt(ledger, Channel.SMS, "SM3", "delivered", minutes=5)
    assert (first.kind, again.kind) == ("applied", "duplicate")
    receipts = [e for e in ledger.timeline(intent.intent_id) if e.kind == "receipt"]
    assert len(receipts) == 1


def test_an_early_callback_is_kept_and_applied_when_the_send_is_recorded(ledger: Ledger) -> None:
    intent = make_intent()
    early = _receipt(ledger, Channel.SMS, "SM4", "delivered", minutes=0)
    assert early.kind == "stored"
    assert early.intent_id is None
    _sent(ledger, intent, "SM4", minutes=1)
    assert ledger.get_state(intent.intent_id) is IntentState.DELIVERED


def test_an_early_callback_naming_an_unknown_intent_waits_for_its_provider_ref(
    ledger: Ledger,
) -> None:
    intent = make_intent()
    early = _receipt(ledger, Channel.SMS, "SM5", "failed", intent_id=intent.intent_id)
    assert early.intent_id is None  # not in the ledger yet: matched later by provider ref
    _sent(ledger, intent, "SM5", minutes=1)
    assert ledger.get_state(intent.intent_id) is IntentState.FAILED


def test_voice_receipts_set_the_dial_outcome_whatever_their_order(ledger: Ledger) -> None:
    intent = make_intent(Channel.VOICE)
    _sent(ledger, intent, "CA1")
    _receipt(ledger, Channel.VOICE, "CA1", "completed", dial=DialOutcome.VOICEMAIL,
             intent_id=intent.intent_id)  # fmt: skip
    _receipt(ledger, Channel.VOICE, "CA1", "ringing", minutes=2, dial=DialOutcome.PENDING,
             intent_id=intent.intent_id)  # fmt: skip
    history = ledger.history(intent.person_id, since=T0 - timedelta(days=1))
    assert [a.dial_outcome for a in history.attempts] == [DialOutcome.VOICEMAIL]
    assert ledger.get_state(intent.intent_id) is IntentState.DELIVERED


def test_letters_returned_after_mailed_become_undelivered(ledger: Ledger) -> None:
    intent = make_intent(Channel.LETTER)
    _sent(ledger, intent, "letter-1.pdf")
    _receipt(ledger, Channel.LETTER, "letter-1.pdf", "mailed")
    assert ledger.get_state(intent.intent_id) is IntentState.DELIVERED
    _receipt(ledger, Channel.LETTER, "letter-1.pdf", "returned", minutes=3)
    assert ledger.get_state(intent.intent_id) is IntentState.UNDELIVERED


def test_sweep_marks_sent_intents_without_a_final_receipt_unknown(ledger: Ledger) -> None:
    stale, fresh, done = make_intent(), make_intent(), make_intent()
    _sent(ledger, stale, "SMa")
    _sent(ledger, done, "SMb")
    _receipt(ledger, Channel.SMS, "SMb", "delivered")
    _sent(ledger, fresh, "SMc", minutes=60 * 48)
    moved = ledger.sweep_unknown(now=T0 + timedelta(hours=73))
    assert moved == [stale.intent_id]
    assert ledger.get_state(stale.intent_id) is IntentState.UNKNOWN
    assert ledger.get_state(fresh.intent_id) is IntentState.SENT
    assert ledger.get_state(done.intent_id) is IntentState.DELIVERED
    # A late final receipt still corrects an unknown intent.
    _receipt(ledger, Channel.SMS, "SMa", "delivered", minutes=60 * 80)
    assert ledger.get_state(stale.intent_id) is IntentState.DELIVERED


def test_summary_counts_rates_and_median_time_to_delivered(ledger: Ledger) -> None:
    ok1, ok2, bad = make_intent(), make_intent(), make_intent()
    for intent, ref in ((ok1, "S1"), (ok2, "S2"), (bad, "S3")):
        _sent(ledger, intent, ref)
    _receipt(ledger, Channel.SMS, "S1", "sent", minutes=1)
    _receipt(ledger, Channel.SMS, "S1", "delivered", minutes=2)
    _receipt(ledger, Channel.SMS, "S2", "delivered", minutes=4)
    _receipt(ledger, Channel.SMS, "S3", "undelivered", minutes=1)
    [sms] = ledger.receipts_summary(since=T0, until=T0 + timedelta(hours=1))
    assert sms.counts == {"sent": 1, "delivered": 2, "undelivered": 1}
    assert (sms.delivered, sms.failed) == (2, 1)
    assert sms.delivery_rate == pytest.approx(2 / 3)
    assert sms.median_to_delivered_s == pytest.approx(180.0)
    assert (
        ledger.receipts_summary(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=3)) == []
    )


def test_overview_has_no_recipient_data(ledger: Ledger) -> None:
    intent = make_intent()
    _sent(ledger, intent, "S9")
    overview = ledger.intent_overview(intent.intent_id)
    assert overview is not None
    assert overview["state"] == "sent"
    assert "+8613800138000" not in repr(overview)
    assert ledger.intent_overview("nope") is None


def test_intent_show_json_has_the_whole_timeline(ledger: Ledger, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dunning.cli.main import app

    intent = make_intent()
    _sent(ledger, intent, "SM7")
    _receipt(ledger, Channel.SMS, "SM7", "delivered")
    env = {
        "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "DUNNING_LOG_LEVEL": "error",
    }
    result = CliRunner().invoke(app, ["intent", "show", intent.intent_id, "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    kinds = [event["kind"] for event in report["timeline"]]
    assert kinds[0] == "evaluated"
    assert {"attempt", "allow", "receipt"} <= set(kinds)
    assert report["intent"]["state"] == "delivered"
    missing = CliRunner().invoke(app, ["intent", "show", "nope"], env=env)
    assert missing.exit_code == 1
    summary = CliRunner().invoke(
        app, ["receipts", "--since", "2026-11-28T00:00:00Z", "--until", "2026-11-29T00:00:00Z",
              "--json"], env=env,
    )  # fmt: skip
    assert summary.exit_code == 0, summary.output
    [sms] = json.loads(summary.stdout)["channels"]
    assert (sms["channel"], sms["delivered"], sms["delivery_rate"]) == ("sms", 1, 1.0)


def test_parse_instant_takes_durations_and_iso_instants() -> None:
    from dunning.cli.common import parse_instant

    assert parse_instant("24h", T0) == T0 - timedelta(hours=24)
    assert parse_instant("7d", T0) == T0 - timedelta(days=7)
    assert parse_instant("2026-11-28T10:00:00+08:00", T0) == T0
    with pytest.raises(ValueError, match="offset"):
        parse_instant("2026-11-28T10:00:00", T0)
