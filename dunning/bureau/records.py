"""One account's snapshot for one reporting cycle, and how it is built from a bureau intent.

:func:`build_record` is pure: the intent (with the account's facts), the account's earlier
snapshots, the gate's verdict on how to report it (compliance condition, a notice still owed)
and the instant. The ledger stores the result as one ``bureau_records`` row
(:meth:`BureauRecord.to_row`, :func:`record_from_row`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dunning.bureau import status as st
from dunning.intents import ContactIntent

__all__ = ["BureauRecord", "build_record", "cycle_of", "record_from_row", "split_name"]


def cycle_of(day: date) -> str:
    """The reporting cycle (YYYY-MM) of a day."""
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True, slots=True)
class BureauRecord:
    """What is reported about one account for one cycle (docs/bureau.md, "The record")."""

    account_id: str
    cycle: str
    person_id: str
    intent_id: str
    jurisdiction: str
    collector_role: str
    account_type: str
    status_code: str
    payment_rating: str
    days_past_due: int
    overdue_periods: int
    current_balance: Decimal
    amount_past_due: Decimal
    principal: Decimal
    credit_limit: Decimal | None
    charge_off_amount: Decimal | None
    currency: str
    as_of: date
    date_opened: date | None
    first_delinquency: date | None
    date_closed: date | None
    last_payment_date: date | None
    terms: str
    payment_history: str  # Metro 2 profile, newest first
    cn_history: str  # PBOC repayment status, oldest first, this cycle last
    compliance_condition: str
    delete_reason: str | None
    original_creditor: str
    surname: str
    first_name: str
    address_lines: tuple[str, ...]
    city: str
    region: str
    postal_code: str
    country: str
    notice_due_by: datetime | None
    furnished_at: datetime

    def to_row(self) -> dict[str, Any]:
        """The ``bureau_records`` row: the indexed columns, the rest under ``detail``."""
        columns = {
            "account_id", "cycle", "person_id", "intent_id", "jurisdiction", "status_code",
            "days_past_due", "currency", "as_of", "first_delinquency", "payment_history",
            "compliance_condition", "delete_reason", "notice_due_by", "furnished_at",
        }  # fmt: skip
        data = asdict(self)
        row = {name: data[name] for name in columns}
        row["current_balance"] = str(self.current_balance)
        row["amount_past_due"] = str(self.amount_past_due)
        detail: dict[str, Any] = {}
        for name, value in data.items():
            if name in columns or name in ("current_balance", "amount_past_due"):
                continue
            detail[name] = _plain(value)
        row["detail"] = detail
        return row


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _opt_day(value: Any) -> date | None:
    return None if value in (None, "") else date.fromisoformat(str(value))


def _opt_amount(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def record_from_row(row: Mapping[str, Any]) -> BureauRecord:
    """The record a ``bureau_records`` row holds (the inverse of :meth:`BureauRecord.to_row`)."""
    d = row["detail"]
    return BureauRecord(
        account_id=row["account_id"], cycle=row["cycle"], person_id=row["person_id"],
        intent_id=row["intent_id"], jurisdiction=row["jurisdiction"],
        collector_role=d["collector_role"], account_type=d["account_type"],
        status_code=row["status_code"], payment_rating=d["payment_rating"],
        days_past_due=int(row["days_past_due"]), overdue_periods=int(d["overdue_periods"]),
        current_balance=Decimal(row["current_balance"]),
        amount_past_due=Decimal(row["amount_past_due"]), principal=Decimal(d["principal"]),
        credit_limit=_opt_amount(d["credit_limit"]),
        charge_off_amount=_opt_amount(d["charge_off_amount"]), currency=row["currency"],
        as_of=_opt_day(row["as_of"]) or date.min, date_opened=_opt_day(d["date_opened"]),
        first_delinquency=_opt_day(row["first_delinquency"]),
        date_closed=_opt_day(d["date_closed"]), last_payment_date=_opt_day(d["last_payment_date"]),
        terms=d["terms"], payment_history=row["payment_history"], cn_history=d["cn_history"],
        compliance_condition=row["compliance_condition"], delete_reason=row["delete_reason"],
        original_creditor=d["original_creditor"], surname=d["surname"],
        first_name=d["first_name"], address_lines=tuple(d["address_lines"]), city=d["city"],
        region=d["region"], postal_code=d["postal_code"], country=d["country"],
        notice_due_by=row["notice_due_by"], furnished_at=row["furnished_at"],
    )  # fmt: skip


def split_name(name: str) -> tuple[str, str]:
    """(surname, given names): a CJK name's first character is its surname, otherwise the last
    word is."""
    name = " ".join(name.split())
    if name and unicodedata.east_asian_width(name[0]) in ("W", "F") and " " not in name:
        return name[:1], name[1:]
    first, _, last = name.rpartition(" ")
    return (last, first) if first else (name, "")


def build_record(
    intent: ContactIntent,
    earlier: Sequence[BureauRecord],
    *,
    compliance_condition: str,
    notice_due_by: datetime | None,
    furnished_at: datetime,
) -> BureauRecord:
    """The snapshot of ``intent``'s account for the cycle of its evaluation day.

    ``earlier`` are the account's snapshots of earlier cycles, newest first.
    """
    facts = intent.facts
    if facts is None:
        raise ValueError("a bureau record needs the account's facts")
    as_of = intent.created_at.astimezone(intent.zone).date()
    cycle = cycle_of(as_of)
    previous = earlier[0] if earlier else None
    third_party = facts.collector_role == "third_party"
    status = st.account_status(
        intent.days_past_due, third_party=third_party, paid=facts.paid,
        charged_off=facts.charged_off, delete_reason=facts.delete_reason,
    )  # fmt: skip
    prior_status = None if previous is None else previous.status_code
    condition = compliance_condition
    if not condition and previous is not None and previous.compliance_condition == "XB":
        condition = "XH"  # the dispute was resolved: say so once
    address = intent.recipient.postal_address
    surname, first = split_name(intent.recipient.name)
    paid = status in st.PAID_STATUSES
    balance = Decimal(0) if paid else intent.amount_due
    return BureauRecord(
        account_id=intent.account_id, cycle=cycle, person_id=intent.person_id,
        intent_id=intent.intent_id, jurisdiction=intent.jurisdiction,
        collector_role=facts.collector_role, account_type=facts.account_type,
        status_code=status, payment_rating=st.payment_rating(status, prior_status),
        days_past_due=max(intent.days_past_due, 0),
        overdue_periods=0 if paid else st.overdue_periods(intent.days_past_due),
        current_balance=balance, amount_past_due=balance, principal=facts.principal,
        credit_limit=facts.credit_limit,
        charge_off_amount=intent.amount_due if status == "97" else None,
        currency=intent.currency, as_of=as_of, date_opened=facts.date_opened,
        first_delinquency=st.first_delinquency(
            status, facts.due_date, prior_status,
            None if previous is None else previous.first_delinquency,
        ),
        date_closed=as_of if paid else None, last_payment_date=facts.last_payment_date,
        terms=facts.terms or _default_terms(facts.account_type),
        payment_history=st.payment_history(cycle, {r.cycle: r.status_code for r in earlier}),
        cn_history=st.cn_repayment_string(
            cycle, st.cn_month_status(intent.days_past_due, paid=paid),
            {r.cycle: r.cn_history[-1] for r in earlier},
        ),
        compliance_condition=condition, delete_reason=facts.delete_reason,
        original_creditor=facts.original_creditor or "", surname=surname, first_name=first,
        address_lines=() if address is None else address.lines,
        city="" if address is None else address.city,
        region="" if address is None else address.region,
        postal_code="" if address is None else address.postal_code,
        country="" if address is None else address.country,
        notice_due_by=notice_due_by, furnished_at=furnished_at,
    )  # fmt: skip


def _default_terms(account_type: str) -> str:
    return {"credit_card": "REV", "quasi_credit_card": "REV"}.get(account_type, "LOC" if
            account_type in ("revolving_loan", "revolving_sub") else "001")  # fmt: skip
