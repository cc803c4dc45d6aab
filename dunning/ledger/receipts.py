"""Provider receipts in the ledger: stored as they come, applied only forward.

A receipt may arrive before the send is recorded (the callback raced the HTTP response): it is
stored unmatched and applied when :meth:`Ledger.record_sent` learns its provider ref. Ranks are
the receipt handler's; a receipt is applied only when it outranks every one applied before, so a
late ``sent`` never overwrites ``delivered``.

Both hold under concurrent callbacks on PostgreSQL: a provider event (channel, provider ref,
status) is stored once by a unique index (``uq_receipts_event``; a second insert does nothing),
and applying a receipt first locks its intent's row, so the rank comparison and the state
update of two receipts for one intent never interleave (SQLite serialises every writer anyway).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Insert, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dunning.intents import Channel
from dunning.ledger.schema import attempts, intents, receipts
from dunning.records import DialOutcome, IntentState

__all__ = ["apply_receipt", "insert_receipt", "receipt_state", "resolve_from_receipts"]

_STATES = {
    "sent": IntentState.SENT,
    "delivered": IntentState.DELIVERED,
    "read": IntentState.DELIVERED,
    "completed": IntentState.DELIVERED,
    "failed": IntentState.FAILED,
    "undelivered": IntentState.UNDELIVERED,
    "busy": IntentState.UNDELIVERED,
    "no-answer": IntentState.UNDELIVERED,
    "canceled": IntentState.UNDELIVERED,
    "bounced": IntentState.UNDELIVERED,
    "complained": IntentState.DELIVERED,  # a complaint proves the email arrived
    "mailed": IntentState.DELIVERED,
    "returned": IntentState.UNDELIVERED,
}


def receipt_state(status: str) -> IntentState:
    """The intent state a receipt status implies; any other status still proves a send."""
    return _STATES.get(status.lower(), IntentState.SENT)


def insert_receipt(
    conn: Connection,
    *,
    provider_ref: str,
    channel: Channel,
    status: str,
    rank: int,
    now: datetime,
    intent_id: str | None,
    raw: Mapping[str, Any] | None,
) -> int | None:
    """Insert one receipt; its id, or None when the same provider event is already stored."""
    result = conn.execute(
        _insert_new_event(conn)
        .values(
            intent_id=intent_id,
            provider_ref=provider_ref,
            channel=channel.value,
            status=status,
            rank=rank,
            received_at=now,
            raw=None if raw is None else json.dumps(dict(raw), sort_keys=True, default=str),
            applied=False,
        )
        .returning(receipts.c.id)
    )
    receipt_id = result.scalar_one_or_none()
    return None if receipt_id is None else int(receipt_id)


def _insert_new_event(conn: Connection) -> Insert:
    """An INSERT into receipts that does nothing when the provider event is already there
    (a concurrent copy of the same callback waits for the first and then does nothing)."""
    event = ["channel", "provider_ref", "status"]
    if conn.dialect.name == "postgresql":
        return postgresql.insert(receipts).on_conflict_do_nothing(index_elements=event)
    return sqlite.insert(receipts).on_conflict_do_nothing(index_elements=event)


def apply_receipt(
    conn: Connection, receipt_id: int, *, now: datetime, dial_outcome: DialOutcome | None = None
) -> bool:
    """Match receipt ``receipt_id`` to its intent and move the intent forward if it outranks.

    Returns True when the intent's state was taken from this receipt.
    """
    receipt = conn.execute(select(receipts).where(receipts.c.id == receipt_id)).one()
    intent_id = receipt.intent_id or conn.scalar(
        select(intents.c.intent_id).where(intents.c.provider_ref == receipt.provider_ref)
    )
    if intent_id is None:
        return False  # early: record_sent applies it once the provider ref is known
    # Receipts for one intent are applied one at a time: the rank read below is the one the
    # update is based on (a concurrent "sent" cannot overwrite a "delivered" applied meanwhile).
    conn.execute(
        select(intents.c.intent_id).where(intents.c.intent_id == intent_id).with_for_update()
    )
    if receipt.intent_id is None:
        conn.execute(
            update(receipts).where(receipts.c.id == receipt_id).values(intent_id=intent_id)
        )
    # A send whose record never committed (a crash after the provider call): the receipt is
    # what proves it, so it closes the attempt the claim left open. An attempt a worker is
    # recording right now is locked by that worker, which locks attempts before intents: it
    # is skipped (the worker closes it), never waited for, so the two never deadlock.
    open_attempts = (
        select(attempts.c.id)
        .where(
            attempts.c.intent_id == intent_id,
            attempts.c.outcome == IntentState.SENDING.value,
        )
        .with_for_update(skip_locked=True)
    )
    conn.execute(
        update(attempts)
        .where(attempts.c.id.in_(open_attempts))
        .values(outcome=IntentState.SENT.value, finished_at=now, provider_ref=receipt.provider_ref)
    )
    if dial_outcome is not None:
        _set_dial_outcome(conn, intent_id, receipt.provider_ref, dial_outcome)
    best = conn.scalar(
        select(func.max(receipts.c.rank)).where(
            receipts.c.intent_id == intent_id, receipts.c.applied.is_(True)
        )
    )
    if best is not None and receipt.rank <= best:
        return False
    conn.execute(update(receipts).where(receipts.c.id == receipt_id).values(applied=True))
    conn.execute(
        update(intents)
        .where(intents.c.intent_id == intent_id)
        .values(
            state=receipt_state(receipt.status).value,
            provider_ref=receipt.provider_ref,
            sending_since=None,
            updated_at=now,
        )
    )
    return True


def _set_dial_outcome(
    conn: Connection, intent_id: str, provider_ref: str, outcome: DialOutcome
) -> None:
    latest = conn.scalar(
        select(attempts.c.id)
        .where(attempts.c.intent_id == intent_id, attempts.c.outcome != "released")
        .order_by((attempts.c.provider_ref == provider_ref).desc(), attempts.c.attempt_no.desc())
        .limit(1)
    )
    if latest is not None:
        conn.execute(update(attempts).where(attempts.c.id == latest).values(dial_outcome=outcome))


def resolve_from_receipts(
    conn: Connection, intent_id: str, attempt: int, *, now: datetime
) -> IntentState | None:
    """Settle an intent stuck in ``sending`` from its receipts; None when there are none."""
    best = conn.execute(
        select(receipts.c.status, receipts.c.provider_ref)
        .where(receipts.c.intent_id == intent_id)
        .order_by(receipts.c.rank.desc(), receipts.c.id.desc())
        .limit(1)
    ).first()
    if best is None:
        return None
    state = receipt_state(best.status)
    conn.execute(update(receipts).where(receipts.c.intent_id == intent_id).values(applied=True))
    conn.execute(
        update(attempts)
        .where(
            attempts.c.intent_id == intent_id,
            attempts.c.attempt_no == attempt,
            attempts.c.outcome == IntentState.SENDING.value,
        )
        .values(outcome=IntentState.SENT.value, finished_at=now, provider_ref=best.provider_ref)
    )
    conn.execute(
        update(intents)
        .where(intents.c.intent_id == intent_id)
        .values(
            state=state.value, provider_ref=best.provider_ref, sending_since=None, updated_at=now
        )
    )
    return state
