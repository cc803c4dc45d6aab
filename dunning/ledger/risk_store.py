"""What the risk review leaves in the ledger: decisions, each account's bucket per day, promises.

- ``decision`` audit records: for each published intent, the segment, score, reason codes and
  variant that chose it (once per intent: a re-run of the day adds nothing).
- ``bucket_history``: one row per account and evaluation day (its delinquency bucket, segment
  and variant), the input of the roll-rate report; a re-run of the day overwrites the row.
- ``promises``: promises to pay from the book, the CLI, an SMS reply or the voice IVR, with
  their outcome (``open``, then ``kept`` or ``broken``). A promise made outside the book also
  writes a ``promise_to_pay`` suppression of the debt (source ``promise``) up to the end of its
  day anywhere on earth, so an intent already queued is held at send time; closing the promise
  lifts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from dunning.clock import utc
from dunning.ledger.core import LedgerCore
from dunning.ledger.schema import UTCDateTime, audit, intents, metadata, suppressions
from dunning.ledger.transitions import write_audit

__all__ = ["PROMISE_SOURCE", "BucketRow", "Promise", "RiskStore", "bucket_history", "promises"]

#: The suppression source of a promise recorded outside the book.
PROMISE_SOURCE = "promise"
# The last time zone to end a day is UTC-12: its midnight is 12:00 UTC the next day.
_LAST_MIDNIGHT = timedelta(days=1, hours=12)

bucket_history = Table(
    "bucket_history",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("bucket", String(16), nullable=False),
    Column("segment", String(128), nullable=False),
    Column("variant", String(64), nullable=False),
    Index("ix_bucket_history_day", "day"),
)

promises = Table(
    "promises",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(128), nullable=False),
    Column("person_id", String(128), nullable=False),
    Column("promised_on", Date, nullable=False),
    Column("pay_by", Date, nullable=False),
    Column("amount", Numeric(18, 4)),
    Column("source", String(16), nullable=False),  # book, cli, console, sms, voice
    Column("intent_id", String(64)),  # the contact it answered, or the account's latest
    Column("status", String(16), nullable=False),  # open, kept, broken
    Column("created_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    Index("ix_promises_account", "account_id"),
)


@dataclass(frozen=True, slots=True)
class BucketRow:
    account_id: str
    bucket: str
    segment: str
    variant: str


@dataclass(frozen=True, slots=True)
class Promise:
    id: int
    account_id: str
    person_id: str
    promised_on: date
    pay_by: date
    amount: Decimal | None
    source: str
    status: str
    created_at: datetime
    closed_at: datetime | None
    intent_id: str | None


def _promise(row: Any) -> Promise:
    amount = None if row.amount is None else Decimal(row.amount)
    return Promise(
        row.id, row.account_id, row.person_id, row.promised_on, row.pay_by, amount,
        row.source, row.status, row.created_at, row.closed_at, row.intent_id,
    )  # fmt: skip


class RiskStore(LedgerCore):
    """Decisions, buckets and promises (see the module docstring)."""

    def record_decisions(
        self, items: Sequence[tuple[str, dict[str, Any]]], *, now: datetime
    ) -> int:
        """A ``decision`` audit record per (intent id, detail) not yet recorded; returns how
        many were new."""
        if not items:
            return 0
        with self._tx(what="recording decisions") as conn:
            ids = [intent_id for intent_id, _ in items]
            known = set(
                conn.execute(
                    select(audit.c.intent_id).where(
                        audit.c.intent_id.in_(ids), audit.c.event == "decision"
                    )
                ).scalars()
            )
            new = 0
            for intent_id, detail in items:
                if intent_id not in known:
                    write_audit(conn, intent_id, "decision", utc(now), detail=detail)
                    known.add(intent_id)
                    new += 1
            return new

    def record_buckets(self, day: date, rows: Iterable[BucketRow]) -> None:
        """Each account's bucket on ``day``; a row for the same account and day is replaced."""
        wanted = list(rows)
        if not wanted:
            return
        with self._tx(what="recording buckets") as conn:
            conn.execute(
                delete(bucket_history).where(
                    bucket_history.c.day == day,
                    bucket_history.c.account_id.in_([r.account_id for r in wanted]),
                )
            )
            conn.execute(
                insert(bucket_history),
                [
                    {"account_id": r.account_id, "day": day, "bucket": r.bucket,
                     "segment": r.segment, "variant": r.variant}
                    for r in wanted
                ],
            )  # fmt: skip

    def buckets_on(self, day: date) -> dict[str, BucketRow]:
        """Every account's bucket row on ``day``."""
        with self._tx(read=True, what="reading buckets") as conn:
            rows = conn.execute(select(bucket_history).where(bucket_history.c.day == day))
            return {
                r.account_id: BucketRow(r.account_id, r.bucket, r.segment, r.variant) for r in rows
            }

    # --- promises -------------------------------------------------------------------------

    def add_promise(
        self,
        account_id: str,
        person_id: str | None,
        *,
        pay_by: date,
        amount: Decimal | None,
        source: str,
        now: datetime,
        intent_id: str | None = None,
    ) -> Promise:
        """Record an open promise; an open promise of the account is replaced (its day moves).
        ``intent_id`` (default: the account's latest intent) carries it in the timeline;
        ``person_id`` None takes the person of that intent. LookupError when the ledger has no
        intent of the account to take them from."""
        with self._tx(person_id, what="recording a promise") as conn:
            latest = conn.execute(
                select(intents.c.intent_id, intents.c.person_id)
                .where(intents.c.account_id == account_id)
                .order_by(intents.c.created_at.desc(), intents.c.intent_id)
                .limit(1)
            ).first()
            if latest is None and person_id is None:
                raise LookupError(f"no intent of account {account_id!r} in the ledger")
            if latest is not None:
                intent_id = intent_id or latest.intent_id
                person_id = person_id or latest.person_id
            conn.execute(
                update(promises)
                .where(promises.c.account_id == account_id, promises.c.status == "open")
                .values(status="replaced", closed_at=utc(now))
            )
            new_id = conn.execute(
                insert(promises).values(
                    account_id=account_id,
                    person_id=person_id,
                    promised_on=utc(now).date(),
                    pay_by=pay_by,
                    amount=amount,
                    source=source,
                    status="open",
                    created_at=utc(now),
                    intent_id=intent_id,
                )
            ).inserted_primary_key
            assert new_id is not None
            detail = {
                "account_id": account_id, "pay_by": pay_by.isoformat(), "source": source,
                "amount": None if amount is None else str(amount),
            }  # fmt: skip
            write_audit(conn, intent_id, "promise_made", utc(now), detail=detail)
            self._lift_promise_hold(conn, account_id, now)
            if source != "book":  # the book's promise is the evaluator's account flag
                conn.execute(
                    insert(suppressions).values(
                        person_id=person_id, channel=None, debt_id=account_id,
                        reason="promise_to_pay", source=PROMISE_SOURCE, created_at=utc(now),
                        until=datetime.combine(pay_by, time(0), tzinfo=UTC) + _LAST_MIDNIGHT,
                    )
                )  # fmt: skip
            row = conn.execute(select(promises).where(promises.c.id == new_id[0])).one()
            return _promise(row)

    def promises_of(self, account_ids: Sequence[str]) -> dict[str, list[Promise]]:
        """The promises of ``account_ids``, oldest first."""
        out: dict[str, list[Promise]] = {a: [] for a in account_ids}
        if not account_ids:
            return out
        with self._tx(read=True, what="reading promises") as conn:
            rows = conn.execute(
                select(promises)
                .where(promises.c.account_id.in_(list(account_ids)))
                .order_by(promises.c.id)
            )
            for row in rows:
                out[row.account_id].append(_promise(row))
        return out

    def latest_sms_intent(self, person_id: str) -> tuple[str, str] | None:
        """(intent id, account id) of the person's latest SMS intent, or None."""
        with self._tx(read=True, what="reading the latest text") as conn:
            row = conn.execute(
                select(intents.c.intent_id, intents.c.account_id)
                .where(intents.c.person_id == person_id, intents.c.channel == "sms")
                .order_by(intents.c.created_at.desc(), intents.c.intent_id)
                .limit(1)
            ).first()
        return None if row is None else (row.intent_id, row.account_id)

    def close_promise(self, promise_id: int, status: str, *, now: datetime) -> bool:
        """Mark an open promise ``kept`` or ``broken``; False when it was no longer open."""
        if status not in ("kept", "broken"):
            raise ValueError(f"a promise closes as kept or broken, not {status!r}")
        with self._tx(what="closing a promise") as conn:
            moved = conn.execute(
                update(promises)
                .where(promises.c.id == promise_id, promises.c.status == "open")
                .values(status=status, closed_at=utc(now))
            ).rowcount
            if moved:
                account_id = conn.execute(
                    select(promises.c.account_id).where(promises.c.id == promise_id)
                ).scalar_one()
                self._lift_promise_hold(conn, account_id, now)
                intent_id = conn.execute(
                    select(promises.c.intent_id).where(promises.c.id == promise_id)
                ).scalar()
                write_audit(
                    conn, intent_id, f"promise_{status}", utc(now),
                    detail={"promise_id": promise_id},
                )  # fmt: skip
            return bool(moved)

    @staticmethod
    def _lift_promise_hold(conn: Connection, account_id: str, now: datetime) -> None:
        conn.execute(
            update(suppressions)
            .where(
                suppressions.c.debt_id == account_id,
                suppressions.c.source == PROMISE_SOURCE,
                suppressions.c.removed_at.is_(None),
            )
            .values(removed_at=utc(now))
        )
