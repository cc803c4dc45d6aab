"""The gate end to end: order of checks, fail-closed refusals, audit fields, clock retries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dunning.clock import ManualClock
from dunning.compliance import ComplianceGate
from dunning.intents import Channel
from dunning.records import ContactAttempt, DialOutcome
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import (
    NY,
    PACKS,
    SHANGHAI,
    attempt,
    history,
    local,
    suppression,
)

GATE = ComplianceGate(PACKS, jitter_s=900)
LONDON = ZoneInfo("Europe/London")
CN_NOON = local(SHANGHAI, 2026, 11, 28, 12, 0)


def test_unknown_jurisdiction_is_refused_no_rule_pack() -> None:
    for jurisdiction in ("FR", "US-CA"):
        intent = make_intent(Channel.SMS, jurisdiction=jurisdiction)
        decision = GATE.decide(intent, history(intent), CN_NOON)
        assert (decision.action, decision.rule_id) == ("refuse", "no_rule_pack")


def test_pack_not_yet_in_force_is_refused() -> None:
    intent = make_intent(Channel.SMS)  # CN pack is effective from 2026-01-30
    decision = GATE.decide(intent, history(intent), datetime(2026, 1, 29, 4, tzinfo=UTC))
    assert (decision.action, decision.rule_id) == ("refuse", "no_rule_pack")


def test_invalid_time_zone_is_refused() -> None:
    intent = make_intent(Channel.SMS, timezone="Mars/Olympus_Mons")
    decision = GATE.decide(intent, history(intent), CN_NOON)
    assert (decision.action, decision.rule_id) == ("refuse", "CN.timezone.unknown")
    assert decision.pack_version == "CN-2026.1"


def test_history_of_another_person_is_refused() -> None:
    intent = make_intent(Channel.SMS)
    other = dataclasses.replace(history(intent), person_id="someone-else")
    assert GATE.decide(intent, other, CN_NOON).action == "refuse"


def test_naive_now_fails_closed() -> None:
    intent = make_intent(Channel.SMS)
    decision = GATE.decide(intent, history(intent), datetime(2026, 11, 28, 12))
    assert (decision.action, decision.rule_id) == ("refuse", "gate.internal_error")


def test_allow_carries_rule_pack_version_and_inputs() -> None:
    intent = make_intent(Channel.SMS)
    decision = GATE.decide(intent, history(intent), CN_NOON)
    assert decision.action == "allow"
    assert decision.pack_version == "CN-2026.1"
    assert decision.inputs["timezone"] == "Asia/Shanghai"
    assert decision.inputs["local_time"].startswith("2026-11-28T12:00:00")
    assert "+8613800138000" not in str(decision.inputs)  # no PII in the audit inputs


def test_suppression_beats_window() -> None:
    intent = make_intent(Channel.SMS)
    night = local(SHANGHAI, 2026, 11, 28, 23, 0)
    stop = history(intent, suppressions=[suppression(intent, "opt_out", channel=Channel.SMS)])
    assert GATE.decide(intent, stop, night).action == "suppress"


def test_the_window_holds_calls_texts_and_email_but_not_letters_at_2330() -> None:
    late = local(SHANGHAI, 2026, 11, 28, 23, 30)
    for channel in (Channel.SMS, Channel.VOICE, Channel.EMAIL):
        intent = make_intent(channel)
        decision = GATE.decide(intent, history(intent), late)
        assert (decision.action, decision.rule_id) == ("defer", "CN.window.nifa2024"), channel
        assert decision.until is not None
        assert decision.until >= local(SHANGHAI, 2026, 11, 29, 8, 0)
    for jurisdiction, zone in (("CN", SHANGHAI), ("US", NY), ("UK", LONDON)):
        letter = make_intent(Channel.LETTER, jurisdiction=jurisdiction, timezone=zone.key)
        at = local(zone, 2026, 11, 28, 23, 30)
        decision = GATE.decide(letter, history(letter), at)
        assert decision.action == "allow", (jurisdiction, decision)


def test_a_letter_at_night_still_meets_suppressions_cease_and_stage_gates() -> None:
    late = local(SHANGHAI, 2026, 11, 28, 23, 30)
    letter = make_intent(Channel.LETTER)
    bankrupt = history(letter, suppressions=[suppression(letter, "bankrupt")])
    decision = GATE.decide(letter, bankrupt, late)
    assert (decision.action, decision.rule_id) == ("suppress", "CN.suppress.bankrupt")
    lawyer = dataclasses.replace(
        letter, template=dataclasses.replace(letter.template, name="lawyer_letter")
    )
    barred = history(lawyer, suppressions=[suppression(lawyer, "time_barred")])
    decision = GATE.decide(lawyer, barred, late)
    assert (decision.action, decision.rule_id) == ("suppress", "CN.stage.time_barred.1006.26b")
    scheduled = dataclasses.replace(letter, not_before=late + timedelta(hours=2))
    decision = GATE.decide(scheduled, history(scheduled), late)
    assert (decision.action, decision.until) == ("defer", late + timedelta(hours=2))
    # A written cease stops every letter but the notices the law still permits.
    us_late = local(NY, 2026, 11, 28, 23, 30)
    reminder = make_intent(Channel.LETTER, jurisdiction="US", timezone="America/New_York")
    ceased = history(reminder, suppressions=[suppression(reminder, "cease")])
    assert GATE.decide(reminder, ceased, us_late).action == "suppress"
    ack = dataclasses.replace(
        reminder, template=dataclasses.replace(reminder.template, name="cease_ack")
    )
    assert GATE.decide(ack, ceased, us_late).action == "allow"


def test_cn_window_defer_at_2159_30_shanghai_drill() -> None:
    intent = make_intent(Channel.SMS)
    clock = ManualClock(local(SHANGHAI, 2026, 11, 28, 21, 59, 30))
    assert GATE.decide(intent, history(intent), clock.now()).action == "allow"
    clock.advance(30)
    decision = GATE.decide(intent, history(intent), clock.now())
    assert (decision.action, decision.rule_id) == ("defer", "CN.window.nifa2024")
    assert decision.until is not None
    opening = local(SHANGHAI, 2026, 11, 29, 8, 0)
    assert opening <= decision.until < opening + timedelta(seconds=900)
    clock.set(decision.until)
    assert GATE.decide(intent, history(intent), clock.now()).action == "allow"


def test_window_and_cap_combine_into_one_until() -> None:
    # Outside the window and capped tomorrow morning too: until skips both in one step.
    intent = make_intent(Channel.VOICE)
    talks = [attempt(intent, local(SHANGHAI, 2026, 11, 29, 0, 1 + i),
                     outcome=DialOutcome.CONVERSATION) for i in range(3)]  # fmt: skip
    decision = ComplianceGate(PACKS, jitter_s=0).decide(
        intent, history(intent, talks), local(SHANGHAI, 2026, 11, 28, 23, 0)
    )
    assert (decision.action, decision.rule_id) == ("defer", "CN.window.nifa2024")
    assert decision.until == local(SHANGHAI, 2026, 11, 30, 8, 0)


def test_not_before_defers_to_the_scheduled_time() -> None:
    intent = make_intent(Channel.SMS, not_before=CN_NOON + timedelta(hours=2))
    decision = GATE.decide(intent, history(intent), CN_NOON)
    assert (decision.action, decision.rule_id) == ("defer", "intent.not_before")
    assert decision.until == CN_NOON + timedelta(hours=2)


def test_precheck_is_the_same_decision() -> None:
    intent = make_intent(Channel.SMS)
    for hour in (3, 12, 23):
        now = local(SHANGHAI, 2026, 11, 28, hour, 0)
        assert GATE.precheck(intent, history(intent), now) == GATE.decide(
            intent, history(intent), now
        )


def test_sequence_under_a_manual_clock_never_exceeds_the_daily_cap() -> None:
    intent = make_intent(Channel.SMS)
    clock = ManualClock(local(SHANGHAI, 2026, 11, 28, 7, 0))
    sent: list[ContactAttempt] = []
    for _ in range(40):
        decision = GATE.decide(intent, history(intent, sent), clock.now())
        if decision.action == "allow":
            sent.append(attempt(intent, clock.now()))
            clock.advance(600)
        else:
            assert decision.until is not None
            assert decision.until > clock.now()
            clock.set(decision.until)
    per_day: dict[object, int] = {}
    for a in sent:
        day = a.at.astimezone(SHANGHAI).date()
        per_day[day] = per_day.get(day, 0) + 1
    assert max(per_day.values()) == 2  # CN.sms.per_day
    assert all(8 <= a.at.astimezone(SHANGHAI).hour < 22 for a in sent)


def test_negative_jitter_is_rejected() -> None:
    import pytest

    with pytest.raises(ValueError, match="jitter_s"):
        ComplianceGate(PACKS, jitter_s=-1)


def test_dunning_now_drill_starts_the_gate_clock_at_that_instant() -> None:
    from dunning.settings import Settings

    intent = make_intent(Channel.SMS)
    closing = Settings.from_env({"DUNNING_NOW": "2026-11-28T14:00:00Z"}).clock()  # 22:00 Shanghai
    decision = GATE.decide(intent, history(intent), closing.now())
    assert (decision.action, decision.rule_id) == ("defer", "CN.window.nifa2024")
    opening = Settings.from_env({"DUNNING_NOW": "2026-11-29T00:00:00Z"}).clock()  # 08:00 Shanghai
    assert GATE.decide(intent, history(intent), opening.now()).action == "allow"
