"""What the ledger knows about one account, for a legal handover; and the handover's own records.

:meth:`HandoverStore.account_record` reads every intent of the account with its attempts,
receipts and audit lines, and the person's suppressions, in a stable order (time, then row id),
so the same ledger state always yields the same record. The handover's own records (the
``litigation`` suppression it adds, its ``handover_*`` audit lines, the firm's acknowledgment)
are left out of the record: building a bag twice gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, desc, insert, select

from dunning.clock import utc
from dunning.ledger.core import LedgerCore
from dunning.ledger.locks import lock_people
from dunning.ledger.optouts import add_suppression
from dunning.ledger.schema import attempts, audit, inbound_messages, intents, receipts, suppressions
from dunning.ledger.transitions import write_audit
from dunning.records import Suppression

__all__ = ["LITIGATION", "AccountRecord", "HandoverStore"]

LITIGATION = "litigation"
_OWN_EVENTS = ("handover_built", "handover_acknowledged")


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """Rows as JSON-ready dicts (datetimes as aware ``datetime``), each list in a stable order."""

    account_id: str
    intents: tuple[dict[str, Any], ...]
    attempts: tuple[dict[str, Any], ...]
    receipts: tuple[dict[str, Any], ...]
    audit: tuple[dict[str, Any], ...]
    suppressions: tuple[dict[str, Any], ...]

    @property
    def person_id(self) -> str | None:
        return self.intents[0]["person_id"] if self.intents else None

    @property
    def debt_id(self) -> str | None:
        return self.intents[0]["debt_id"] if self.intents else None

    def latest(self) -> datetime | None:
        """The instant of the last thing recorded about the account (the bag's date)."""
        stamps = [
            row[key]
            for rows, key in (
                (self.intents, "updated_at"), (self.attempts, "started_at"),
                (self.receipts, "received_at"), (self.audit, "at"),
                (self.suppressions, "created_at"),
            )
            for row in rows
        ]  # fmt: skip
        return max(stamps) if stamps else None


def _rows(conn: Connection, statement: Any) -> tuple[dict[str, Any], ...]:
    return tuple(dict(row._mapping) for row in conn.execute(statement))


def _parsed(rows: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    out = []
    for row in rows:
        detail = row.get("detail")
        out.append({**row, "detail": json.loads(detail) if detail else {}})
    return tuple(out)


class HandoverStore(LedgerCore):
    """Reads for the evidence bundle, and the handover's records (see the module docstring)."""

    def account_record(self, account_id: str) -> AccountRecord:
        with self._tx(read=True, what=f"reading account {account_id}") as conn:
            own = select(intents.c.intent_id).where(intents.c.account_id == account_id)
            intent_rows = _rows(
                conn,
                select(intents)
                .where(intents.c.account_id == account_id)
                .order_by(intents.c.created_at, intents.c.intent_id),
            )
            attempt_rows = _rows(
                conn,
                select(attempts)
                .where(attempts.c.intent_id.in_(own))
                .order_by(attempts.c.started_at, attempts.c.id),
            )
            receipt_rows = _rows(
                conn,
                select(receipts)
                .where(receipts.c.intent_id.in_(own))
                .order_by(receipts.c.received_at, receipts.c.id),
            )
            audit_rows = _rows(
                conn,
                select(audit)
                .where(audit.c.intent_id.in_(own), audit.c.event.not_in(_OWN_EVENTS))
                .order_by(audit.c.at, audit.c.id),
            )
            people = sorted({row["person_id"] for row in intent_rows})
            suppression_rows = _rows(
                conn,
                select(suppressions)
                .where(suppressions.c.person_id.in_(people), suppressions.c.reason != LITIGATION)
                .order_by(suppressions.c.created_at, suppressions.c.id),
            )
        return AccountRecord(
            account_id,
            intents=tuple(_intent_row(r) for r in intent_rows),
            attempts=_parsed(attempt_rows),
            receipts=tuple({k: v for k, v in r.items() if k != "raw"} for r in receipt_rows),
            audit=_parsed(audit_rows),
            suppressions=suppression_rows,
        )

    def record_handover(
        self, *, person_id: str, debt_id: str, now: datetime, detail: Mapping[str, Any]
    ) -> None:
        """The account went to a law firm: a ``litigation`` suppression of the debt (the firm
        speaks for the creditor now; SMS, calls and letters stop) and ``handover_built``."""
        now = utc(now)
        with self._tx(what="recording a handover") as conn:
            lock_people(conn, [person_id])
            add_suppression(
                conn, Suppression(person_id, None, LITIGATION, "handover", now, debt_id)
            )
            write_audit(conn, _latest_intent(conn, debt_id), "handover_built", now, detail=detail)

    def record_handover_ack(
        self, *, dedupe_key: str, debt_id: str, now: datetime, detail: Mapping[str, Any]
    ) -> bool:
        """The firm acknowledged the bag: stored once per ``dedupe_key`` (its receipt) and
        audited as ``handover_acknowledged``; False for a copy."""
        now = utc(now)
        with self._tx(what="recording a handover acknowledgment") as conn:
            seen = conn.scalar(
                select(inbound_messages.c.id).where(inbound_messages.c.dedupe_key == dedupe_key)
            )
            if seen is not None:
                return False
            intent_id = _latest_intent(conn, debt_id)
            conn.execute(
                insert(inbound_messages).values(
                    dedupe_key=dedupe_key, channel="legal", kind="handover_ack",
                    keyword=None, possible_opt_out=False, intent_id=intent_id,
                    body=json.dumps(dict(detail), sort_keys=True), received_at=now,
                    handled_at=now,
                )
            )  # fmt: skip
            write_audit(conn, intent_id, "handover_acknowledged", now, detail=detail)
            return True


def _latest_intent(conn: Connection, debt_id: str) -> str | None:
    found: str | None = conn.scalar(
        select(intents.c.intent_id)
        .where(intents.c.debt_id == debt_id)
        .order_by(desc(intents.c.created_at), desc(intents.c.intent_id))
        .limit(1)
    )
    return found


def _intent_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row without its body, plus from the body the template and the debtor's zone (for
    local times); the recipient's contact data stays out."""
    body = json.loads(row["body"])
    plain = {k: v for k, v in row.items() if k != "body"}
    return plain | {"template": body["template"]["name"], "timezone": body["timezone"]}
