"""The files of an evidence bundle, as bytes: account summary, statement, contact history.

Every file is a pure function of the account and the ledger's record, with sorted keys and no
build time, so the same ledger state gives the same bytes. Instants appear twice, in UTC and in
the debtor's local time (``*_local``), as a court reads a contact history.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dunning.channels.letter.law_firms import LawFirmEngagement
from dunning.ledger.handover import AccountRecord
from dunning.producers.accounts import Account

__all__ = ["account_summary", "dumps", "history_csv", "history_json", "statement_csv"]


def dumps(value: Any) -> bytes:
    """Stable JSON: sorted keys, two-space indent, UTF-8, a final newline."""
    return (
        json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"
    ).encode()


def _plain(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | Decimal):
        return str(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key] = _plain(item, zone)
            if isinstance(item, datetime):
                out[f"{key}_local"] = item.astimezone(zone).isoformat()
        return out
    if isinstance(value, list | tuple):
        return [_plain(v, zone) for v in value]
    return value


def account_summary(account: Account, engagement: LawFirmEngagement) -> dict[str, Any]:
    """Principal, interest, fees, payments and balance, with the contract and the creditor."""
    parts, item = account.breakdown, account.itemization()
    return {
        "account_id": account.account_id,
        "person_id": account.person_id,
        "debtor": account.name,
        "jurisdiction": account.jurisdiction,
        "collector_role": account.collector_role,
        "creditor": engagement.creditor_name,
        "law_firm": engagement.firm_name,
        "engagement_id": engagement.engagement_id,
        "currency": account.currency,
        "principal": str(parts.principal if parts else account.principal),
        "interest": str(parts.interest if parts else Decimal(0)),
        "penalty_interest": str(parts.penalty if parts else Decimal(0)),
        "fees": str(parts.fees if parts else Decimal(0)),
        "payments_since_itemization": str(item.payments),
        "itemization_date": item.on.isoformat(),
        "balance": str(account.amount_due),
        "due_date": account.due_date.isoformat(),
        "last_payment_date": None
        if account.last_payment_date is None
        else account.last_payment_date.isoformat(),
        "contract_number": (parts.contract_number if parts else None) or account.account_id,
        "contract_date": None
        if parts is None or parts.contract_date is None
        else parts.contract_date.isoformat(),
    }


def statement_csv(summary: dict[str, Any]) -> bytes:
    """The statement of account: one line per component, the balance last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["item", "amount", "currency"])
    for item in ("principal", "interest", "penalty_interest", "fees"):
        writer.writerow([item, summary[item], summary["currency"]])
    writer.writerow(["payments_since_itemization", f"-{summary['payments_since_itemization']}",
                     summary["currency"]])  # fmt: skip
    writer.writerow(["balance", summary["balance"], summary["currency"]])
    return out.getvalue().encode()


def history_json(record: AccountRecord, zone: ZoneInfo) -> bytes:
    """Every intent, attempt, receipt, gate decision (audit) and suppression of the account."""
    return dumps(
        {
            "account_id": record.account_id,
            "timezone": zone.key,
            "intents": _plain(list(record.intents), zone),
            "attempts": _plain(list(record.attempts), zone),
            "receipts": _plain(list(record.receipts), zone),
            "audit": _plain(list(record.audit), zone),
            "suppressions": _plain(list(record.suppressions), zone),
        }
    )


def history_csv(record: AccountRecord, zone: ZoneInfo) -> bytes:
    """The same history as one timeline: UTC, local time, kind, intent, what happened."""
    rows: list[tuple[datetime, int, str, str, str]] = []
    for i, row in enumerate(record.intents):
        what = f"{row['channel']} {row['step']} ({row['template']}): {row['state']}"
        rows.append((row["created_at"], i, "intent", row["intent_id"], what))
    for i, row in enumerate(record.attempts):
        what = f"attempt {row['attempt_no']}: {row['outcome']} {row['provider_ref'] or ''}"
        rows.append((row["started_at"], i, "attempt", row["intent_id"], what.strip()))
    for i, row in enumerate(record.receipts):
        what = f"{row['channel']} {row['status']} {row['provider_ref']}"
        rows.append((row["received_at"], i, "receipt", row["intent_id"] or "", what))
    for i, row in enumerate(record.audit):
        what = f"{row['event']} {row['rule_id'] or ''}".strip()
        rows.append((row["at"], i, "audit", row["intent_id"] or "", what))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["at_utc", "at_local", "kind", "intent_id", "what"])
    order = {"intent": 0, "attempt": 1, "receipt": 2, "audit": 3}
    for at, _, kind, intent_id, what in sorted(rows, key=lambda r: (r[0], order[r[2]], r[1])):
        writer.writerow([at.isoformat(), at.astimezone(zone).isoformat(), kind, intent_id, what])
    return out.getvalue().encode()
