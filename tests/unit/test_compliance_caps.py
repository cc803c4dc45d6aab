"""Frequency caps and cooldowns, one table test per rule with its source in the name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dunning.compliance import ComplianceGate
from dunning.compliance.caps import check_caps
from dunning.intents import Channel, ContactIntent
from dunning.records import DialOutcome
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import NY, PACKS, SHANGHAI, attempt, history, local, pack

GATE = ComplianceGate(PACKS, jitter_s=0)
NOANS = DialOutcome.NO_ANSWER


def us_call() -> ContactIntent:
    return make_intent(Channel.VOICE, jurisdiction="US")


def test_us_1006_14b2iA_seven_calls_in_seven_days() -> None:  # noqa: N802  citation case
    intent = us_call()
    now = local(NY, 2026, 7, 8, 12, 0)
    calls = [attempt(intent, now - timedelta(days=6, hours=20) + timedelta(days=i), outcome=NOANS)
             for i in range(7)]  # fmt: skip
    decision = GATE.decide(intent, history(intent, calls), now)
    assert decision.action == "defer"
    assert decision.rule_id == "US.calls.1006.14b2iA"
    assert decision.until == calls[0].at + timedelta(days=7)  # the oldest ages out
    six = GATE.decide(intent, history(intent, calls[1:]), now)
    assert six.action == "allow"


def test_us_1006_14b2iA_calls_older_than_seven_days_do_not_count() -> None:  # noqa: N802  citation case
    intent = us_call()
    now = local(NY, 2026, 7, 8, 12, 0)
    calls = [attempt(intent, now - timedelta(days=8, hours=i), outcome=NOANS) for i in range(10)]
    assert GATE.decide(intent, history(intent, calls), now).action == "allow"


def test_us_1006_14b2iA_counts_per_debt() -> None:  # noqa: N802  citation case
    intent = us_call()
    now = local(NY, 2026, 7, 8, 12, 0)
    other = [attempt(intent, now - timedelta(hours=i + 1), outcome=NOANS, debt_id="other")
             for i in range(7)]  # fmt: skip
    assert GATE.decide(intent, history(intent, other), now).action == "allow"


@pytest.mark.parametrize("outcome", [DialOutcome.BUSY, DialOutcome.NOT_IN_SERVICE])
def test_us_1006_14b3_busy_and_not_in_service_are_excluded(outcome: DialOutcome) -> None:
    intent = us_call()
    now = local(NY, 2026, 7, 8, 12, 0)
    calls = [attempt(intent, now - timedelta(hours=i + 1), outcome=outcome) for i in range(9)]
    assert GATE.decide(intent, history(intent, calls), now).action == "allow"


@pytest.mark.parametrize("outcome", [DialOutcome.VOICEMAIL, DialOutcome.PENDING, None])
def test_us_1006_14b2iA_voicemail_and_unknown_outcomes_count(outcome: DialOutcome | None) -> None:  # noqa: N802  citation case
    intent = us_call()
    now = local(NY, 2026, 7, 8, 12, 0)
    calls = [attempt(intent, now - timedelta(hours=i + 1), outcome=outcome) for i in range(7)]
    assert GATE.decide(intent, history(intent, calls), now).action == "defer"


def test_us_1006_14b2iB_no_call_within_seven_days_after_conversation() -> None:  # noqa: N802  citation case
    intent = us_call()
    talk = local(NY, 2026, 7, 6, 10, 0)  # a Monday: day 1
    talked = history(intent, [attempt(intent, talk, outcome=DialOutcome.CONVERSATION)])
    sunday_evening = local(NY, 2026, 7, 12, 20, 0)  # day 7
    decision = GATE.decide(intent, talked, sunday_evening)
    assert decision.action == "defer"
    assert decision.rule_id == "US.calls.1006.14b2iB"
    assert decision.until == local(NY, 2026, 7, 13, 8, 0)  # day 8, at the window's opening
    assert GATE.decide(intent, talked, local(NY, 2026, 7, 13, 9, 0)).action == "allow"


def test_us_1006_14b2iB_conversation_does_not_stop_sms() -> None:  # noqa: N802  citation case
    intent = make_intent(Channel.SMS, jurisdiction="US")
    talk = local(NY, 2026, 7, 6, 10, 0)
    prior = attempt(intent, talk, channel=Channel.VOICE, outcome=DialOutcome.CONVERSATION)
    assert (
        GATE.decide(intent, history(intent, [prior]), talk + timedelta(hours=2)).action == "allow"
    )


def test_us_ma_940cmr_7_04_1f_two_calls_or_texts_in_seven_days() -> None:
    intent = make_intent(Channel.SMS, jurisdiction="US-MA")
    now = local(NY, 2026, 7, 8, 12, 0)
    prior = [
        attempt(intent, now - timedelta(days=5), channel=Channel.VOICE, outcome=NOANS),
        attempt(intent, now - timedelta(days=3), channel=Channel.SMS),
    ]
    decision = GATE.decide(intent, history(intent, prior), now)
    assert decision.action == "defer"
    assert decision.rule_id == "US-MA.calls_texts.940cmr7.04-1f"
    assert decision.pack_version == "US-MA-2021.11+US-2021.11"
    assert decision.until == prior[0].at + timedelta(days=7)
    assert GATE.decide(intent, history(intent, prior[1:]), now).action == "allow"


def test_us_ma_inherits_us_federal_caps() -> None:
    caps = {c.id for c in pack("US-MA").caps}
    assert {c.id for c in pack("US").caps} < caps
    assert "US-MA.calls_texts.940cmr7.04-1f" in caps


def test_cn_nifa2024_three_connected_calls_per_calendar_day() -> None:
    intent = make_intent(Channel.VOICE)
    now = local(SHANGHAI, 2026, 11, 28, 15, 0)
    talks = [attempt(intent, local(SHANGHAI, 2026, 11, 28, 9 + i), outcome=DialOutcome.CONVERSATION)
             for i in range(3)]  # fmt: skip
    decision = GATE.decide(intent, history(intent, talks), now)
    assert decision.action == "defer"
    assert decision.rule_id == "CN.calls.connected_per_day"
    assert decision.until == local(SHANGHAI, 2026, 11, 29, 8, 0)  # next day's opening
    assert GATE.decide(intent, history(intent, talks[:2]), now).action == "allow"


def test_cn_nifa2024_connected_calls_yesterday_do_not_count_today() -> None:
    intent = make_intent(Channel.VOICE)
    talks = [attempt(intent, local(SHANGHAI, 2026, 11, 27, 21, i), outcome=DialOutcome.CONVERSATION)
             for i in range(3)]  # fmt: skip
    decision = GATE.decide(intent, history(intent, talks), local(SHANGHAI, 2026, 11, 28, 8, 1))
    assert decision.action == "allow"


def test_cn_cba2026_six_unanswered_attempts_per_number_per_day() -> None:
    intent = make_intent(Channel.VOICE)
    now = local(SHANGHAI, 2026, 11, 28, 15, 0)
    rings = [attempt(intent, local(SHANGHAI, 2026, 11, 28, 9, 10 * i), outcome=NOANS)
             for i in range(6)]  # fmt: skip
    decision = GATE.decide(intent, history(intent, rings), now)
    assert decision.action == "defer"
    assert decision.rule_id == "CN.calls.unanswered_per_number_per_day"
    other_number = [attempt(intent, r.at, outcome=NOANS, phone="+8613900139000") for r in rings]
    assert GATE.decide(intent, history(intent, other_number), now).action == "allow"


@pytest.mark.parametrize(
    ("jurisdiction", "channel", "rule", "count"),
    [
        ("CN", Channel.SMS, "CN.sms.per_day", 2),
        ("CN", Channel.EMAIL, "CN.email.per_day", 1),
        ("US", Channel.SMS, "US.sms.per_day", 1),
        ("US", Channel.EMAIL, "US.email.per_day", 1),
    ],
)
def test_policy_1006_14a_daily_message_caps(
    jurisdiction: str, channel: Channel, rule: str, count: int
) -> None:
    intent = make_intent(channel, jurisdiction=jurisdiction)
    tz = SHANGHAI if jurisdiction == "CN" else NY
    now = local(tz, 2026, 11, 27, 15, 0)
    sent = [attempt(intent, local(tz, 2026, 11, 27, 9, i)) for i in range(count)]
    decision = GATE.decide(intent, history(intent, sent), now)
    assert (decision.action, decision.rule_id) == ("defer", rule)
    assert decision.until == local(tz, 2026, 11, 28, 8, 0)


def test_policy_1006_14a_weekly_sms_cap() -> None:
    intent = make_intent(Channel.SMS, jurisdiction="US")
    now = local(NY, 2026, 7, 8, 12, 0)
    sent = [attempt(intent, now - timedelta(days=d)) for d in (6, 4, 2)]
    decision = GATE.decide(intent, history(intent, sent), now)
    assert (decision.action, decision.rule_id) == ("defer", "US.sms.per_week")
    assert decision.until == sent[0].at + timedelta(days=7)


def test_rolling_window_is_conservative_across_fall_back() -> None:
    # 2026-11-01 in New York lasts 25 hours, so 7 calendar days span 169 hours: an attempt just
    # after midnight on day 1 still counts at 23:50 on day 7, although it is > 168 hours old.
    rule = next(c for c in pack("US").caps if c.id == "US.calls.1006.14b2iA")
    intent = us_call()
    first = local(NY, 2026, 10, 29, 0, 10)
    calls = [attempt(intent, first, outcome=NOANS)] + [
        attempt(intent, local(NY, 2026, 11, 3, 12, i), outcome=NOANS) for i in range(6)
    ]
    late = local(NY, 2026, 11, 4, 23, 50)
    assert late - first > timedelta(days=7)
    hit = check_caps([rule], intent, history(intent, calls), late, NY)
    assert hit is not None
    assert hit.free_at == local(NY, 2026, 11, 5, 0, 0)


def test_cap_deferral_lands_in_the_window_with_jitter() -> None:
    gate = ComplianceGate(PACKS, jitter_s=900)
    intent = make_intent(Channel.EMAIL)
    now = local(SHANGHAI, 2026, 11, 28, 15, 0)
    sent = [attempt(intent, local(SHANGHAI, 2026, 11, 28, 9, 0))]
    decision = gate.decide(intent, history(intent, sent), now)
    assert decision.action == "defer"
    assert decision.until is not None
    opening = local(SHANGHAI, 2026, 11, 29, 8, 0)
    assert opening <= decision.until < opening + timedelta(seconds=900)
    assert decision.until == gate.decide(intent, history(intent, sent), now).until  # stable


def test_future_dated_attempts_from_racing_workers_count() -> None:
    intent = make_intent(Channel.EMAIL)
    now = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    claimed = [attempt(intent, now + timedelta(seconds=1))]
    assert GATE.decide(intent, history(intent, claimed), now).action == "defer"
