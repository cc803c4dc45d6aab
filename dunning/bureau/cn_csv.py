"""The CN report CSV: the neutral fields an institution maps into its PBOC submission.

One header row, then one row per account in account order; UTF-8 without a byte-order mark,
LF line ends, every field quoted only when it must be (RFC 4180, Python's ``csv`` with
``lineterminator="\\n"``). Amounts have two decimals, dates are ``YYYY-MM-DD``, an empty field
means "none". The column contract (docs/bureau.md, "CN report CSV") is :data:`COLUMNS`; a
column is never renamed or reordered, new ones are added at the end.

Accounts deleted from reporting are not rows: a deletion goes to the PBOC as its own request,
so the export lists them in the manifest instead.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from typing import TextIO

from dunning.bureau.records import BureauRecord
from dunning.bureau.status import ACCOUNT_TYPES_CN

__all__ = ["COLUMNS", "CnCsvWriter", "cn_row", "parse_cn_csv"]

COLUMNS = (
    "account_id",  # the lender's account (debt) id
    "person_id",  # the debtor
    "name",  # the debtor's name as the book has it
    "cycle",  # YYYY-MM
    "report_date",  # date of the account information
    "account_type",  # D1, R1, R2, R3, R4, C1
    "currency",  # ISO 4217
    "date_opened",
    "credit_limit",
    "principal",  # original amount
    "balance",
    "overdue_periods",  # current overdue periods (当前逾期期数)
    "overdue_amount",  # current overdue amount (当前逾期总额)
    "repayment_status_24",  # 24 months, oldest first, this cycle last: N 1-7 C G D Z * #
    "first_overdue_date",  # date of first delinquency
    "last_payment_date",
    "date_closed",
    "disputed",  # 1 while the debtor's dispute stands (reported with its mark), else 0
)
_CENT = Decimal("0.01")


def _money(value: Decimal | None) -> str:
    return "" if value is None else str(value.quantize(_CENT))


def cn_row(record: BureauRecord) -> dict[str, str]:
    """The CSV row of ``record``."""

    def day(value: object) -> str:
        return "" if value is None else str(value)

    return {
        "account_id": record.account_id,
        "person_id": record.person_id,
        "name": f"{record.surname}{record.first_name}"
        if record.jurisdiction == "CN"
        else f"{record.first_name} {record.surname}".strip(),
        "cycle": record.cycle,
        "report_date": day(record.as_of),
        "account_type": "C1"
        if record.collector_role == "third_party"
        else ACCOUNT_TYPES_CN[record.account_type],
        "currency": record.currency,
        "date_opened": day(record.date_opened),
        "credit_limit": _money(record.credit_limit),
        "principal": _money(record.principal),
        "balance": _money(record.current_balance),
        "overdue_periods": str(record.overdue_periods),
        "overdue_amount": _money(record.amount_past_due if record.overdue_periods else Decimal(0)),
        "repayment_status_24": record.cn_history,
        "first_overdue_date": day(record.first_delinquency),
        "last_payment_date": day(record.last_payment_date),
        "date_closed": day(record.date_closed),
        "disputed": "1" if record.compliance_condition == "XB" else "0",
    }


class CnCsvWriter:
    """Writes the header at construction, then one row per :meth:`add`."""

    def __init__(self, out: TextIO) -> None:
        self._csv = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        self._csv.writeheader()

    def add(self, record: BureauRecord) -> None:
        self._csv.writerow(cn_row(record))


def parse_cn_csv(text: TextIO) -> Iterator[dict[str, str]]:
    """The rows of a CN report CSV; raises ValueError naming the line of a malformed row."""
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError("cn-csv line 1: the header is not the documented column contract")
    for row in reader:
        if len(row) != len(COLUMNS):
            raise ValueError(f"cn-csv line {reader.line_num}: {len(row)} fields, "
                             f"expected {len(COLUMNS)}")  # fmt: skip
        status = row[COLUMNS.index("repayment_status_24")]
        if len(status) != 24 or any(c not in "N1234567CGDZ*#" for c in status):
            raise ValueError(f"cn-csv line {reader.line_num}: repayment_status_24 {status!r}")
        yield dict(zip(COLUMNS, row, strict=True))
