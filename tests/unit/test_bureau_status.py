"""Status codes, the payment history profile and the date of first delinquency over 24 cycles.

One first-party installment account is furnished on the 15th of each month from 2025-01 to
2027-01, skipping 2025-10: it goes from current through 30-180+ days, is brought current,
falls behind again, and is paid. Each row gives what that cycle's record must say.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dunning.account_facts import AccountFacts
from dunning.bureau import status as st
from dunning.bureau.records import BureauRecord, build_record
from dunning.intents import Channel
from tests.factories import make_intent

D = date.fromisoformat

# cycle, days past due, missed due date, paid -> status, DOFD, payment history (before B fill)
CYCLES = [
    ("2025-01", 0, "2025-01-15", False, "11", None, ""),
    ("2025-02", 35, "2025-01-11", False, "71", "2025-01-11", "0"),
    ("2025-03", 63, "2025-01-11", False, "78", "2025-01-11", "10"),
    ("2025-04", 94, "2025-01-11", False, "80", "2025-01-11", "210"),
    ("2025-05", 124, "2025-01-11", False, "82", "2025-01-11", "3210"),
    ("2025-06", 155, "2025-01-11", False, "83", "2025-01-11", "43210"),
    ("2025-07", 185, "2025-01-11", False, "84", "2025-01-11", "543210"),
    ("2025-08", 10, "2025-08-05", False, "11", None, "6543210"),  # brought current
    ("2025-09", 40, "2025-08-06", False, "71", "2025-08-06", "06543210"),  # a new DOFD
    # 2025-10: not furnished (D in the profile)
    ("2025-11", 100, "2025-08-06", False, "80", "2025-08-06", "D106543210"),
    ("2025-12", 5, "2025-12-10", False, "11", None, "3D106543210"),
    ("2026-01", 0, "2026-01-10", False, "11", None, "03D106543210"),
    ("2026-02", 29, "2026-01-17", False, "11", None, "003D106543210"),
    ("2026-03", 30, "2026-02-13", False, "71", "2026-02-13", "0003D106543210"),
    ("2026-04", 59, "2026-02-13", False, "71", "2026-02-13", "10003D106543210"),
    ("2026-05", 60, "2026-02-13", False, "78", "2026-02-13", "110003D106543210"),
    ("2026-06", 89, "2026-02-13", False, "78", "2026-02-13", "2110003D106543210"),
    ("2026-07", 90, "2026-02-13", False, "80", "2026-02-13", "22110003D106543210"),
    ("2026-08", 119, "2026-02-13", False, "80", "2026-02-13", "322110003D106543210"),
    ("2026-09", 120, "2026-02-13", False, "82", "2026-02-13", "3322110003D106543210"),
    ("2026-10", 150, "2026-02-13", False, "83", "2026-02-13", "43322110003D106543210"),
    ("2026-11", 180, "2026-02-13", False, "84", "2026-02-13", "543322110003D106543210"),
    ("2026-12", 200, "2026-02-13", True, "13", "2026-02-13", "6543322110003D106543210"),
    ("2027-01", 230, "2026-02-13", True, "13", "2026-02-13", "E6543322110003D106543210"),
]


def furnish(
    earlier: list[BureauRecord], cycle: str, dpd: int, due: str, paid: bool
) -> BureauRecord:
    year, month = (int(p) for p in cycle.split("-"))
    created = datetime(year, month, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    facts = AccountFacts("first_party", "installment", Decimal("9000.00"), D(due), paid=paid)
    intent = make_intent(
        Channel.BUREAU, account_id="acct-table", created_at=created, days_past_due=dpd,
        facts=facts, amount_due=Decimal("1500.75"),
    )  # fmt: skip
    return build_record(
        intent, earlier, compliance_condition="", notice_due_by=None, furnished_at=created
    )


def test_status_history_and_first_delinquency_over_24_cycles() -> None:
    earlier: list[BureauRecord] = []
    for cycle, dpd, due, paid, status, dofd, history in CYCLES:
        record = furnish(earlier, cycle, dpd, due, paid)
        assert record.cycle == cycle
        assert record.status_code == status, cycle
        assert record.first_delinquency == (None if dofd is None else D(dofd)), cycle
        assert record.payment_history == history.ljust(24, "B"), cycle
        earlier.insert(0, record)
    paid, after = earlier[1], earlier[0]
    assert paid.payment_rating == "6"  # it was 180+ days past due when paid
    assert paid.current_balance == after.current_balance == Decimal(0)
    assert paid.date_closed == D("2026-12-15")
    assert len(earlier) == 24


def test_cn_repayment_string_runs_oldest_first_with_this_cycle_last() -> None:
    earlier: list[BureauRecord] = []
    for cycle, dpd, due, paid, *_ in CYCLES:
        earlier.insert(0, furnish(earlier, cycle, dpd, due, paid))
    by_cycle = {r.cycle: r for r in earlier}
    assert by_cycle["2025-02"].cn_history == "*" * 22 + "N2"
    assert by_cycle["2025-07"].cn_history == "*" * 17 + "N234567"
    # 2025-08 is 10 days late: one overdue period; 2025-10 was never furnished: "#"
    assert by_cycle["2025-11"].cn_history.endswith("N23456712#4")
    assert by_cycle["2027-01"].cn_history[-2:] == "CC"
    assert all(len(r.cn_history) == 24 for r in earlier)


@pytest.mark.parametrize(
    ("days", "third_party", "paid", "charged_off", "expected"),
    [
        (0, False, False, False, "11"), (29, False, False, False, "11"),
        (30, False, False, False, "71"), (59, False, False, False, "71"),
        (60, False, False, False, "78"), (89, False, False, False, "78"),
        (90, False, False, False, "80"), (119, False, False, False, "80"),
        (120, False, False, False, "82"), (149, False, False, False, "82"),
        (150, False, False, False, "83"), (179, False, False, False, "83"),
        (180, False, False, False, "84"), (900, False, False, False, "84"),
        (-3, False, False, False, "11"), (200, False, False, True, "97"),
        (200, False, True, True, "13"), (95, True, False, False, "93"),
        (95, True, True, False, "62"),
    ],
)  # fmt: skip
def test_account_status_from_days_past_due(
    days: int, third_party: bool, paid: bool, charged_off: bool, expected: str
) -> None:
    got = st.account_status(days, third_party=third_party, paid=paid, charged_off=charged_off)
    assert got == expected


@pytest.mark.parametrize(("reason", "code"), [("identity_theft", "DF"), ("error", "DA")])
def test_a_deleted_account_gets_the_delete_indicator(reason: str, code: str) -> None:
    earlier = [furnish([], "2026-10", 95, "2026-07-01", False)]
    intent_facts = AccountFacts(
        "first_party", "installment", Decimal("9000.00"), D("2026-07-01"), delete_reason=reason
    )
    created = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)
    intent = make_intent(Channel.BUREAU, account_id="acct-table", created_at=created,
                         days_past_due=125, facts=intent_facts)  # fmt: skip
    record = build_record(
        intent, earlier, compliance_condition="", notice_due_by=None, furnished_at=created
    )
    assert (record.status_code, record.first_delinquency, record.delete_reason) == (
        code, None, reason,
    )  # fmt: skip


def test_a_resolved_dispute_is_reported_xh_once() -> None:
    disputed = dataclasses.replace(furnish([], "2026-10", 95, "2026-07-01", False),
                                   compliance_condition="XB")  # fmt: skip
    created = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)
    intent = make_intent(Channel.BUREAU, account_id="acct-table", created_at=created,
                         days_past_due=125)  # fmt: skip
    resolved = build_record(
        intent, [disputed], compliance_condition="", notice_due_by=None, furnished_at=created
    )
    later = build_record(
        intent, [resolved], compliance_condition="", notice_due_by=None, furnished_at=created
    )
    assert (resolved.compliance_condition, later.compliance_condition) == ("XH", "")


def test_cycles_step_back_across_years() -> None:
    assert st.cycle_back("2026-01", 1) == "2025-12"
    assert st.cycle_back("2026-03", 24) == "2024-03"
