"""The validation notice gate on PostgreSQL, through the claim a worker makes: a third-party
collector's text about a debt is refused until the debt's validation notice has gone to a
provider, then allowed; a second notice is suppressed; the history reads notices of any age."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel, ContactIntent, TemplateRef
from dunning.ledger import Ledger
from dunning.records import VALIDATION_NOTICE, IntentState
from tests.factories import make_intent
from tests.integration.webhook_support import CONFIG
from tests.services import postgres_schema

pytestmark = pytest.mark.integration

GATE = ComplianceGate(load_packs(CONFIG / "compliance.toml"), jitter_s=0)
NOON_NY = datetime(2026, 7, 8, 16, 0, tzinfo=UTC)


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with postgres_schema() as url:
        opened = Ledger.open(url)
        try:
            yield opened
        finally:
            opened.close()


def _claim(ledger: Ledger, intent: ContactIntent, now: datetime) -> str:
    ledger.record_published([intent], now=now)
    claim = ledger.claim(intent, worker="t", now=now, reconcile_after_s=900,
                         gate=lambda history: GATE.decide(intent, history, now))  # fmt: skip
    if claim.kind == "claimed":
        ledger.record_sent(intent.intent_id, claim.attempt, provider_ref=f"ref-{intent.step}",
                           status="accepted", detail={}, now=now)  # fmt: skip
    return ledger.get_state(intent.intent_id).value


def _third_party(step: str, channel: Channel, template: str, created: datetime) -> ContactIntent:
    intent = make_intent(channel, account_id="US-V1", step=step, jurisdiction="US",
                         collector_role="third_party", created_at=created)  # fmt: skip
    return dataclasses.replace(intent, template=TemplateRef(template, "en-US"))


def test_nothing_goes_out_before_the_validation_notice(ledger: Ledger) -> None:
    early = NOON_NY - timedelta(days=40)  # older than the history window the caps read
    sms = _third_party("early.sms.d1", Channel.SMS, "early_reminder", early)
    assert _claim(ledger, sms, early) == IntentState.DEAD.value

    notice = _third_party("validation.notice", Channel.LETTER, VALIDATION_NOTICE, early)
    assert _claim(ledger, notice, early) == IntentState.SENT.value
    again = _third_party("validation.notice.2", Channel.LETTER, VALIDATION_NOTICE, NOON_NY)
    assert _claim(ledger, again, NOON_NY) == IntentState.SUPPRESSED.value

    later = _third_party("mid.sms.d1", Channel.SMS, "mid_reminder", NOON_NY)
    assert _claim(ledger, later, NOON_NY) == IntentState.SENT.value
    history = ledger.history(sms.person_id, since=NOON_NY)
    assert history.validation_sent_at(sms.debt_id) == early
