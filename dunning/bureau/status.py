"""From days past due and the account's earlier cycles to what a bureau is told.

Pure functions; the tables and their sources are in docs/bureau.md ("Status codes",
"Payment history", "Date of first delinquency", "CN repayment status").

- Metro 2 account status: 11 current (0-29 days past due), 71 (30-59), 78 (60-89), 80
  (90-119), 82 (120-149), 83 (150-179), 84 (180+), 97 charged off; a third-party collector
  reports 93 (assigned to collections). Paid: 13 (first party), 62 (third party, was a
  collection). Deleted from reporting: DA (error), DF (identity theft).
- Payment history profile: 24 characters, position 1 the cycle before the reported one, then
  back one cycle per position; ``B`` before the account's first reported cycle, ``D`` for a
  cycle without a record after it.
- Date of first delinquency (FCRA 623(a)(5)): the first missed due date that led to the
  delinquency, fixed once reported; it is set again only after a cycle that reported the
  account current.
- CN (PBOC) repayment status per month: ``N`` current, ``1``-``7`` overdue periods (7: seven
  or more), ``C`` paid off; ``*`` before the first reported cycle, ``#`` a cycle with no record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

__all__ = [
    "ACCOUNT_TYPES_CN",
    "ACCOUNT_TYPES_METRO2",
    "DELETE_STATUS",
    "PAID_STATUSES",
    "account_status",
    "cn_month_status",
    "cn_repayment_string",
    "cycle_back",
    "first_delinquency",
    "month_char",
    "overdue_periods",
    "payment_history",
    "payment_rating",
]

#: (lowest days past due, status) from the most delinquent down.
_BY_DAYS = ((180, "84"), (150, "83"), (120, "82"), (90, "80"), (60, "78"), (30, "71"), (0, "11"))
PAID_STATUSES = frozenset({"13", "62"})
DELETE_STATUS = {"error": "DA", "identity_theft": "DF"}
#: The history character of a cycle reported with each status.
_MONTH_CHAR = {
    "11": "0", "71": "1", "78": "2", "80": "3", "82": "4", "83": "5", "84": "6",
    "97": "L", "93": "G", "13": "E", "62": "E", "DA": "D", "DF": "D",
}  # fmt: skip
#: Neutral account type -> (Metro 2 portfolio type, Metro 2 account type).
ACCOUNT_TYPES_METRO2 = {
    "installment": ("I", "01"),
    "revolving_loan": ("C", "15"),
    "credit_card": ("R", "18"),
    "quasi_credit_card": ("R", "18"),
    "revolving_sub": ("C", "15"),
    "collection": ("O", "48"),
}
#: Neutral account type -> PBOC second-generation account type.
ACCOUNT_TYPES_CN = {
    "installment": "D1",
    "revolving_loan": "R1",
    "credit_card": "R2",
    "quasi_credit_card": "R3",
    "revolving_sub": "R4",
    "collection": "C1",
}


def account_status(
    days_past_due: int, *, third_party: bool, paid: bool, charged_off: bool,
    delete_reason: str | None = None,
) -> str:  # fmt: skip
    """The Metro 2 account status of one cycle."""
    if delete_reason is not None:
        return DELETE_STATUS[delete_reason]
    if third_party:
        return "62" if paid else "93"
    if paid:
        return "13"
    if charged_off:
        return "97"
    return next(code for floor, code in _BY_DAYS if days_past_due >= floor or floor == 0)


def month_char(status: str) -> str:
    """The payment history character a cycle reported with ``status`` leaves behind."""
    return _MONTH_CHAR.get(status, "D")


def cycle_back(cycle: str, months: int) -> str:
    """The cycle ``months`` before ``cycle`` (both YYYY-MM)."""
    year, month = (int(part) for part in cycle.split("-"))
    index = year * 12 + (month - 1) - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def payment_history(cycle: str, earlier: Mapping[str, str]) -> str:
    """The 24-character profile for ``cycle``; ``earlier`` maps cycle -> status reported."""
    oldest = min(earlier, default=None)
    chars = []
    for back in range(1, 25):
        then = cycle_back(cycle, back)
        if then in earlier:
            chars.append(month_char(earlier[then]))
        elif oldest is not None and oldest < then:
            chars.append("D")
        else:
            chars.append("B")
    return "".join(chars)


def payment_rating(status: str, previous_status: str | None) -> str:
    """For a paid account, how it stood before it was paid (blank for other statuses)."""
    if status not in PAID_STATUSES:
        return ""
    char = month_char(previous_status) if previous_status else "0"
    return char if char in "0123456GL" else "0"


def first_delinquency(
    status: str, missed_due_date: date, previous_status: str | None, previous_date: date | None
) -> date | None:
    """The date of first delinquency to report with ``status``.

    ``missed_due_date`` is the first due date the account now misses; ``previous_*`` are what
    the last reported cycle said (None when it was never reported).
    """
    kept = previous_date if previous_status not in (None, "11") else None
    if status in PAID_STATUSES:
        return kept
    if status in ("11", "DA", "DF"):
        return None
    return kept or missed_due_date


def overdue_periods(days_past_due: int) -> int:
    """Monthly periods overdue (PBOC 当前逾期期数): 1 from the first day past due."""
    return 0 if days_past_due <= 0 else (days_past_due + 29) // 30


def cn_month_status(days_past_due: int, *, paid: bool) -> str:
    """The PBOC repayment status character of one cycle."""
    if paid:
        return "C"
    periods = overdue_periods(days_past_due)
    return "N" if periods == 0 else str(min(periods, 7))


def cn_repayment_string(cycle: str, this_month: str, earlier: Mapping[str, str]) -> str:
    """24 characters, oldest first, the reported cycle last; ``earlier`` maps cycle -> char."""
    oldest = min(earlier, default=None)
    chars = []
    for back in range(23, 0, -1):
        then = cycle_back(cycle, back)
        if then in earlier:
            chars.append(earlier[then])
        elif oldest is not None and oldest < then:
            chars.append("#")
        else:
            chars.append("*")
    return "".join(chars) + this_month
