"""Bureau records for the format tests: four US accounts and two CN accounts, fixed values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from dunning.account_facts import AccountFacts
from dunning.bureau.records import BureauRecord, build_record
from dunning.intents import Channel, PostalAddress, Recipient
from tests.factories import make_intent

FURNISHED = datetime(2026, 11, 16, 14, 30, 5, tzinfo=UTC)
_US_ADDRESS = PostalAddress(("12 Elm Street", "Apt 4"), "Boston", "02108", "US", region="MA")
_CN_ADDRESS = PostalAddress(("浦东新区世纪大道100号",), "上海", "200120", "CN", region="上海市")


def _record(account: str, jurisdiction: str, dpd: int, facts: AccountFacts, *,
            condition: str = "", name: str = "Jane Q Doe") -> BureauRecord:  # fmt: skip
    address = _US_ADDRESS if jurisdiction == "US" else _CN_ADDRESS
    intent = make_intent(
        Channel.BUREAU, account_id=account, jurisdiction=jurisdiction, days_past_due=dpd,
        created_at=datetime(2026, 11, 16, 14, 0, tzinfo=UTC), facts=facts,
        amount_due=Decimal("2345.99"),
        recipient=Recipient(name=name, postal_address=address),
        timezone="America/New_York" if jurisdiction == "US" else "Asia/Shanghai",
        currency="USD" if jurisdiction == "US" else "CNY",
    )  # fmt: skip
    return build_record(
        intent, [], compliance_condition=condition, notice_due_by=None, furnished_at=FURNISHED
    )


def us_records() -> list[BureauRecord]:
    """A1 184 days late (84); A2 a third-party collection (93, K1); A3 disputed (71, XB); A4
    deleted for identity theft (DF)."""
    first = AccountFacts(
        "first_party", "installment", Decimal("12000.00"), date(2026, 5, 16),
        date_opened=date(2025, 3, 2), terms="24", last_payment_date=date(2026, 4, 30),
    )  # fmt: skip
    third = AccountFacts(
        "third_party", "collection", Decimal("800.00"), date(2026, 6, 1),
        original_creditor="Acme Bank N.A.",
    )  # fmt: skip
    card = AccountFacts(
        "first_party", "credit_card", Decimal("3000.00"), date(2026, 10, 10),
        credit_limit=Decimal("5000.00"), date_opened=date(2024, 1, 20), disputed=True,
    )  # fmt: skip
    deleted = AccountFacts(
        "first_party", "installment", Decimal("700.00"), date(2026, 7, 1),
        delete_reason="identity_theft",
    )  # fmt: skip
    return [
        _record("A1", "US", 184, first),
        _record("A2", "US", 168, third, name="John Roe"),
        _record("A3", "US", 37, card, condition="XB", name="Ann Lee"),
        _record("A4", "US", 138, deleted, name="Bob Ray"),
    ]


def cn_records() -> list[BureauRecord]:
    """C1 a personal loan 95 days late; C2 a credit card, paid."""
    loan = AccountFacts("first_party", "installment", Decimal("50000.00"), date(2026, 8, 13),
                        date_opened=date(2025, 8, 13), terms="12")  # fmt: skip
    card = AccountFacts("first_party", "credit_card", Decimal("8000.00"), date(2026, 9, 1),
                        credit_limit=Decimal("20000.00"), paid=True)  # fmt: skip
    return [
        _record("C1", "CN", 95, loan, name="张三"),
        _record("C2", "CN", 76, card, name="李四"),
    ]
