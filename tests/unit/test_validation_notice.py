"""The validation notice (12 CFR 1006.34, docs/legal.md): the business-day calendar, the period
end over weekends and federal holidays, the gate that sends it first, and the evaluator."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dunning.business_days import (
    add_business_days,
    is_business_day,
    us_federal_holidays,
    validation_period,
)
from dunning.compliance import ComplianceGate
from dunning.intent_parts import Itemization
from dunning.intents import (
    Channel,
    ContactIntent,
    TemplateRef,
    decode_intent,
    encode_intent,
)
from dunning.producers.accounts import account_from_row
from dunning.records import VALIDATION_NOTICE, ContactHistory, GateDecision
from dunning.templates import itemization_context
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import NY, PACKS, local
from tests.unit.test_evaluator import AS_OF as EVAL_DAY
from tests.unit.test_evaluator import account as evaluator_account
from tests.unit.test_evaluator import run

GATE = ComplianceGate(PACKS, jitter_s=0)
US_NOON = local(NY, 2026, 7, 8, 12, 0)


def test_the_2026_federal_holidays_with_their_observed_days() -> None:
    days = us_federal_holidays(2026)
    assert date(2026, 7, 3) in days  # 4 July 2026 is a Saturday: observed Friday the 3rd
    assert date(2026, 7, 4) not in days
    assert days[date(2026, 11, 26)] == "Thanksgiving Day"
    assert days[date(2026, 1, 19)] == "Birthday of Martin Luther King, Jr."
    assert days[date(2026, 5, 25)] == "Memorial Day"
    assert len(days) == 11


def test_a_saturday_new_year_is_observed_in_the_year_before() -> None:
    assert date(2021, 12, 31) in us_federal_holidays(2021)  # 1 January 2022 was a Saturday
    assert date(2022, 1, 1) not in us_federal_holidays(2022)
    assert date(2023, 1, 2) in us_federal_holidays(2023)  # a Sunday: observed on Monday


def test_juneteenth_only_from_2021() -> None:
    assert date(2020, 6, 19) not in us_federal_holidays(2020)
    assert date(2023, 6, 19) in us_federal_holidays(2023)


def test_business_days_skip_weekends_and_holidays() -> None:
    assert not is_business_day(date(2026, 11, 28))  # Saturday
    assert not is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert is_business_day(date(2026, 11, 27))
    # Wednesday 25 Nov: Thu is Thanksgiving, then Fri 27, Mon 30, Tue 1, Wed 2, Thu 3.
    assert add_business_days(date(2026, 11, 25), 5) == date(2026, 12, 3)


def test_validation_period_over_a_weekend_and_a_federal_holiday() -> None:
    # Sent Friday 2 October 2026: Sat, Sun, and Columbus Day (Mon 12 Oct) do not count.
    period = validation_period(date(2026, 10, 2))
    assert period.assumed_receipt == date(2026, 10, 9)  # Mon 5 .. Fri 9
    period = validation_period(date(2026, 10, 6))  # Tue: Wed 7, Thu 8, Fri 9, Tue 13, Wed 14
    assert period.assumed_receipt == date(2026, 10, 14)
    assert period.ends_on == date(2026, 11, 13)
    assert period.ends_on - period.assumed_receipt == timedelta(days=30)
    assert period.open_on(date(2026, 11, 13))
    assert not period.open_on(date(2026, 11, 14))


def test_no_other_contact_before_the_validation_notice() -> None:
    sms = make_intent(Channel.SMS, jurisdiction="US", collector_role="third_party")
    decision = GATE.decide(sms, ContactHistory(sms.person_id), US_NOON)
    assert (decision.action, decision.rule_id) == ("refuse", "US.validation.1006.34")
    sent = ContactHistory(sms.person_id, validation_sent=((sms.debt_id, US_NOON - timedelta(1)),))
    assert GATE.decide(sms, sent, US_NOON).action == "allow"
    other_debt = ContactHistory(sms.person_id, validation_sent=(("another", US_NOON),))
    assert GATE.decide(sms, other_debt, US_NOON).action == "refuse"


def test_a_first_party_lender_owes_no_validation_notice() -> None:
    sms = make_intent(Channel.SMS, jurisdiction="US")
    assert GATE.decide(sms, ContactHistory(sms.person_id), US_NOON).action == "allow"


def test_the_notice_goes_once_and_only_where_a_pack_asks_for_it() -> None:
    notice = make_intent(Channel.LETTER, jurisdiction="US", collector_role="third_party")
    notice = dataclasses.replace(notice, template=TemplateRef(VALIDATION_NOTICE, "en-US"))
    assert GATE.decide(notice, ContactHistory(notice.person_id), US_NOON).action == "allow"
    again = ContactHistory(notice.person_id, validation_sent=((notice.debt_id, US_NOON),))
    decision = GATE.decide(notice, again, US_NOON + timedelta(hours=1))
    assert (decision.action, decision.rule_id) == ("suppress", "US.validation.1006.34")
    cn = make_intent(Channel.LETTER, collector_role="third_party")
    cn = dataclasses.replace(cn, template=TemplateRef(VALIDATION_NOTICE, "zh-CN"))
    noon = datetime(2026, 11, 28, 4, tzinfo=UTC)
    decision = GATE.decide(cn, ContactHistory(cn.person_id), noon)
    assert (decision.action, decision.rule_id) == ("suppress", "CN.validation.not_required")


def test_the_intent_carries_role_and_itemization_and_old_bodies_still_decode() -> None:
    plain = make_intent(Channel.LETTER, jurisdiction="US")
    assert b"collector_role" not in encode_intent(plain)
    item = Itemization(date(2026, 9, 1), Decimal("1200.00"), Decimal("30.00"), Decimal("4.50"))
    notice = dataclasses.replace(plain, collector_role="third_party", itemization=item)
    assert decode_intent(encode_intent(notice)) == notice


def test_the_itemization_adds_up_and_the_end_date_counts_from_the_last_send_day() -> None:
    item = Itemization(date(2026, 9, 1), Decimal("1200.00"), Decimal("30.00"), Decimal("4.50"))
    created = datetime(2026, 10, 2, 14, tzinfo=UTC)  # Friday in New York
    notice = make_intent(
        Channel.LETTER, jurisdiction="US", itemization=item, created_at=created,
        template=TemplateRef(VALIDATION_NOTICE, "en-US"),
    )  # fmt: skip
    # expires two days later: the latest send day is Sunday 4 Oct, receipt Fri 9, end 8 Nov.
    context = itemization_context(notice)
    assert context["validation_end_iso"] == "2026-11-08"
    assert context["validation_end_date"] == "November 8, 2026"
    assert context["itemization_amount"] == "$1,200.00"
    assert context["fees_since_itemization"] == "$4.50"


ROW = {
    "account_id": "US-1", "person_id": "P-1", "name": "Jane Doe", "timezone": "America/New_York",
    "locale": "en-US", "jurisdiction": "US", "currency": "USD", "amount_due": "500.00",
    "due_date": "2026-09-01", "collector_role": "third_party",
}  # fmt: skip


def test_the_book_itemization_defaults_to_the_due_date_and_adds_up() -> None:
    account = account_from_row(ROW)
    assert account.itemization() == Itemization(date(2026, 9, 1), Decimal("500.00"))
    changed = account_from_row(
        {**ROW, "itemization_date": "2026-08-01", "interest_since_itemization": "20.00",
         "fees_since_itemization": "5.00", "payments_since_itemization": "25.00"}
    )  # fmt: skip
    item = changed.itemization()
    assert item.amount + item.interest + item.fees - item.payments == Decimal("500.00")


def test_interest_beyond_the_balance_is_a_bad_row() -> None:
    with pytest.raises(ValueError, match="interest_since_itemization"):
        account_from_row({**ROW, "interest_since_itemization": "600.00"})


def test_a_third_party_account_gets_its_validation_notice_first() -> None:
    us = evaluator_account(
        account_id="US-9", jurisdiction="US", locale="en-US", timezone="America/New_York",
        currency="USD", collector_role="third_party", phone="+12025550143",
    )  # fmt: skip
    at = datetime.combine(EVAL_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=16)

    def precheck(intent: ContactIntent) -> GateDecision:
        return GATE.decide(intent, ContactHistory(intent.person_id), at)

    [result] = run(us, precheck=precheck)
    assert [(i.step, i.channel) for i in result.intents] == [("validation.notice", Channel.LETTER)]
    [notice] = result.intents
    assert notice.itemization is not None
    assert notice.collector_role == "third_party"
    assert result.skipped
    assert {s.rule_id for s in result.skipped} == {"US.validation.1006.34"}
    by_email = dataclasses.replace(us, esign_consent=True)
    [result] = run(by_email, precheck=precheck)
    assert [i.channel for i in result.intents] == [Channel.EMAIL]


def test_a_cn_third_party_account_gets_no_validation_notice_nor_a_skip_for_it() -> None:
    cn = evaluator_account(collector_role="third_party")
    at = datetime.combine(EVAL_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)

    def precheck(intent: ContactIntent) -> GateDecision:
        return GATE.decide(intent, ContactHistory(intent.person_id), at)

    [result] = run(cn, precheck=precheck)
    assert result.intents
    assert all(i.step != "validation.notice" for i in result.intents)
    assert all(s.step != "validation.notice" for s in result.skipped)
