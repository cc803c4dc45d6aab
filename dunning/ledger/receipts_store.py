"""Receipt-side ledger writes: deduplicated receipts, inbound messages, cancellations, the sweep.

Functions take the Ledger's engine (``Ledger.engine``) and run one transaction each, so the
webhook can call them through ``asyncio.to_thread`` without holding a connection across awaits.

``inbound_messages`` keeps every inbound SMS and keypad choice, keyed by a dedupe key (the
inbound MessageSid, or ``gather:<CallSid>:<digits>``) so a retried webhook is recognised, and
carries the state of the one opt-out confirmation (``pending`` -> ``sending`` -> ``sent`` |
``failed``), which is what makes that confirmation go out at most once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from dunning.clock import utc
from dunning.errors import LedgerError
from dunning.intents import Channel, ContactIntent
from dunning.ledger.optouts import add_suppression, cancel_waiting, lock_keys
from dunning.ledger.queries import read_intent
from dunning.ledger.receipts import apply_receipt, insert_receipt
from dunning.ledger.receipts_outbox import FeedMessage, add_to_feed
from dunning.ledger.schema import UTCDateTime, attempts, audit, intents, metadata, receipts
from dunning.ledger.transitions import write_audit
from dunning.records import DialOutcome, IntentState, Suppression

__all__ = [
    "FeedFor",
    "InboundRecord",
    "ReceiptInput",
    "ReceiptOutcome",
    "cancel_queued",
    "claim_confirmation",
    "finish_confirmation",
    "inbound_messages",
    "latest_answered_by",
    "load_intent",
    "people_for_phone",
    "record_inbound",
    "store_receipt",
    "store_receipts",
    "sweep_unknown",
    "transaction",
]

#: Default time an intent may stay ``sent`` without a final receipt before it becomes ``unknown``.
UNKNOWN_AFTER = timedelta(hours=72)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(128), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("kind", String(24), nullable=False),  # opt_out, opt_in, agent, callback_request
    Column("keyword", String(32)),
    Column("possible_opt_out", Boolean, nullable=False, default=False),
    Column("from_phone", String(32)),
    Column("to_phone", String(32)),
    Column("person_id", String(128)),
    Column("intent_id", String(64)),
    Column("body", Text),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("confirmation", String(16)),  # pending, sending, sent, failed; null: none owed
    Column("confirmation_ref", String(64)),
    Column("handled_at", UTCDateTime()),
    Index("ix_inbound_person", "person_id"),
    Index("ix_inbound_kind_received", "kind", "received_at"),
    Index("ix_inbound_from_phone", "from_phone"),  # 0004: the latest STOP or START from a number
)
# Declared here beside the migration (0002) that creates them on the ledger's own tables.
Index("ix_attempts_phone", attempts.c.phone)
Index("ix_receipts_received", receipts.c.received_at)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction on ``engine``; database faults come out as LedgerError."""
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger transaction failed: {exc}") from exc


# --- receipts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    """What storing one receipt did: ``applied`` moved the intent, ``stored`` kept it (early or
    outranked), ``duplicate`` found the same receipt already stored and changed nothing.
    ``receipt_id`` is the stored row (None for a duplicate)."""

    kind: Literal["applied", "stored", "duplicate"]
    intent_id: str | None
    state: IntentState | None
    receipt_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiptInput:
    """One receipt to store. ``suppress_email`` (``complaint`` or ``bounced``) also records an
    email suppression for the matched intent's person, in the same transaction."""

    provider_ref: str
    channel: Channel
    status: str
    rank: int
    intent_id: str | None = None
    raw: Mapping[str, Any] | None = None
    dial_outcome: DialOutcome | None = None
    suppress_email: str | None = None


#: Builds the feed message of a receipt just stored (``receipts_outbox``), in its transaction.
FeedFor = Callable[[ReceiptInput, ReceiptOutcome], FeedMessage]


def store_receipt(
    engine: Engine,
    *,
    provider_ref: str,
    channel: Channel,
    status: str,
    rank: int,
    now: datetime,
    intent_id: str | None = None,
    raw: Mapping[str, Any] | None = None,
    dial_outcome: DialOutcome | None = None,
) -> ReceiptOutcome:
    """Store a receipt once (same ref and status again is a duplicate) and apply it if it outranks.

    ``intent_id`` (from the signed callback URL) is kept only when the ledger knows the intent;
    otherwise the receipt waits, unmatched, for ``record_sent`` to learn its provider ref.
    A rank of 0 (unknown status) is stored and never applied.
    """
    item = ReceiptInput(provider_ref, channel, status, rank, intent_id, raw, dial_outcome)
    return store_receipts(engine, [item], now=now)[0]


def store_receipts(
    engine: Engine,
    items: Sequence[ReceiptInput],
    *,
    now: datetime,
    feed: FeedFor | None = None,
) -> list[ReceiptOutcome]:
    """:func:`store_receipt` for every item, all in one transaction: a batch is stored whole or
    not at all (LedgerError), so its retry never finds half of it already there. With ``feed``,
    each receipt stored (no duplicate) is owed to the receipts feed in that transaction."""
    now = utc(now)
    with transaction(engine) as conn:
        outcomes = [_store(conn, item, now) for item in items]
        if feed is not None:
            pairs = zip(items, outcomes, strict=True)
            entries = [(o.receipt_id, feed(i, o)) for i, o in pairs if o.receipt_id is not None]
            add_to_feed(conn, entries, now=now)
        owed: list[tuple[str, str]] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if item.suppress_email and outcome.kind != "duplicate" and outcome.intent_id:
                person = _person_of(conn, outcome.intent_id)
                if person is not None:
                    owed.append((person, item.suppress_email))
        lock_keys(conn, (person for person, _ in owed))
        for person, reason in owed:
            add_suppression(
                conn, Suppression(person, Channel.EMAIL, reason, f"email_{reason}", now)
            )
    return outcomes


def _store(conn: Connection, item: ReceiptInput, now: datetime) -> ReceiptOutcome:
    known = None
    if item.intent_id is not None:
        known = conn.scalar(
            select(intents.c.intent_id).where(intents.c.intent_id == item.intent_id)
        )
    receipt_id = insert_receipt(
        conn,
        provider_ref=item.provider_ref,
        channel=item.channel,
        status=item.status,
        rank=item.rank,
        now=now,
        intent_id=known,
        raw=item.raw,
    )
    if receipt_id is None:  # this provider event is already stored
        return ReceiptOutcome("duplicate", known, _state(conn, known))
    dial_outcome = item.dial_outcome
    if dial_outcome is DialOutcome.PENDING:
        dial_outcome = None  # a late "ringing" must not undo how the call ended
    # apply_receipt sets the dial outcome even when the status is outranked: the caps
    # count how the call ended whatever order the callbacks came in.
    applied = item.rank > 0 and apply_receipt(conn, receipt_id, now=now, dial_outcome=dial_outcome)
    matched = conn.scalar(select(receipts.c.intent_id).where(receipts.c.id == receipt_id))
    kind: Literal["applied", "stored"] = "applied" if applied else "stored"
    return ReceiptOutcome(kind, matched, _state(conn, matched), receipt_id)


def _person_of(conn: Connection, intent_id: str) -> str | None:
    person: str | None = conn.scalar(
        select(intents.c.person_id).where(intents.c.intent_id == intent_id)
    )
    return person


def _state(conn: Connection, intent_id: str | None) -> IntentState | None:
    if intent_id is None:
        return None
    value = conn.scalar(select(intents.c.state).where(intents.c.intent_id == intent_id))
    return None if value is None else IntentState(value)


def latest_answered_by(engine: Engine, intent_id: str) -> str | None:
    """The AnsweredBy of the last answering-machine detection recorded for ``intent_id``."""
    with transaction(engine) as conn:
        detail = conn.scalar(
            select(audit.c.detail)
            .where(audit.c.intent_id == intent_id, audit.c.event == "amd")
            .order_by(audit.c.id.desc())
            .limit(1)
        )
    if not detail:
        return None
    value = json.loads(detail).get("answered_by")
    return str(value) if value else None


def load_intent(engine: Engine, intent_id: str) -> ContactIntent | None:
    """The stored ContactIntent, or None when the ledger does not know ``intent_id``."""
    with transaction(engine) as conn:
        body = conn.scalar(select(intents.c.body).where(intents.c.intent_id == intent_id))
    return None if body is None else read_intent(body)


def sweep_unknown(
    engine: Engine, *, now: datetime, older_than: timedelta = UNKNOWN_AFTER, limit: int = 1000
) -> list[str]:
    """Move intents left ``sent`` (no final receipt) since before ``now - older_than`` to unknown.

    The age is measured from the intent's last change (the send, or its last non-final
    receipt). A final receipt that arrives later still applies: ``unknown`` is not final for
    receipts, only for sending. Returns the ids moved.
    """
    now = utc(now)
    cutoff = now - older_than
    with transaction(engine) as conn:
        ids = list(
            conn.scalars(
                select(intents.c.intent_id)
                .where(intents.c.state == IntentState.SENT.value, intents.c.updated_at < cutoff)
                .order_by(intents.c.updated_at)
                .limit(limit)
            )
        )
        for intent_id in ids:
            conn.execute(
                update(intents)
                .where(intents.c.intent_id == intent_id, intents.c.state == IntentState.SENT.value)
                .values(state=IntentState.UNKNOWN.value, updated_at=now)
            )
            write_audit(conn, intent_id, "unknown", now, detail={"no_final_receipt_since": cutoff})
    return ids


# --- inbound messages and opt-outs ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One inbound message or keypad choice, as stored for the record and for agents."""

    dedupe_key: str
    channel: Channel
    kind: str
    received_at: datetime
    from_phone: str | None = None
    to_phone: str | None = None
    person_id: str | None = None
    intent_id: str | None = None
    body: str | None = None
    keyword: str | None = None
    possible_opt_out: bool = False
    confirmation: str | None = None  # "pending" when a confirmation is owed


def record_inbound(engine: Engine, record: InboundRecord) -> bool:
    """Store ``record``; False (nothing written) when its dedupe key was stored before."""
    values = {
        "dedupe_key": record.dedupe_key,
        "channel": record.channel.value,
        "kind": record.kind,
        "keyword": record.keyword,
        "possible_opt_out": record.possible_opt_out,
        "from_phone": record.from_phone,
        "to_phone": record.to_phone,
        "person_id": record.person_id,
        "intent_id": record.intent_id,
        "body": record.body,
        "received_at": utc(record.received_at),
        "confirmation": record.confirmation,
    }
    try:
        with transaction(engine) as conn:
            present = conn.scalar(
                select(func.count())
                .select_from(inbound_messages)
                .where(inbound_messages.c.dedupe_key == record.dedupe_key)
            )
            if present:
                return False
            conn.execute(insert(inbound_messages).values(**values))
    except LedgerError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            return False  # a concurrent retry of the same webhook won the insert
        raise
    return True


def claim_confirmation(engine: Engine, dedupe_key: str) -> bool:
    """Take the right to send the confirmation owed for ``dedupe_key``; True exactly once.

    ``pending`` and ``failed`` may be claimed; ``sending`` and ``sent`` may not, so a retried
    webhook never sends a second confirmation.
    """
    with transaction(engine) as conn:
        taken = conn.execute(
            update(inbound_messages)
            .where(
                inbound_messages.c.dedupe_key == dedupe_key,
                inbound_messages.c.confirmation.in_(("pending", "failed")),
            )
            .values(confirmation="sending")
        ).rowcount
    return bool(taken)


def finish_confirmation(engine: Engine, dedupe_key: str, *, provider_ref: str | None) -> None:
    """Mark the claimed confirmation ``sent`` (with its SID) or, with no ref, ``failed``."""
    state = "failed" if provider_ref is None else "sent"
    with transaction(engine) as conn:
        conn.execute(
            update(inbound_messages)
            .where(inbound_messages.c.dedupe_key == dedupe_key)
            .values(confirmation=state, confirmation_ref=provider_ref)
        )


def people_for_phone(engine: Engine, phone: str) -> list[tuple[str, str]]:
    """(person_id, jurisdiction) of everyone we contacted at ``phone``, most recent first.

    Looked up through the attempts (indexed by phone): a person who replies has been texted or
    called from us at that number.
    """
    with transaction(engine) as conn:
        rows = conn.execute(
            select(attempts.c.person_id, intents.c.jurisdiction, func.max(attempts.c.started_at))
            .join(intents, intents.c.intent_id == attempts.c.intent_id)
            .where(attempts.c.phone == phone)
            .group_by(attempts.c.person_id, intents.c.jurisdiction)
            .order_by(func.max(attempts.c.started_at).desc())
        ).all()
    seen: dict[str, str] = {}
    for person_id, jurisdiction, _ in rows:
        seen.setdefault(person_id, jurisdiction)
    return list(seen.items())


def cancel_queued(
    engine: Engine, person_id: str, channel: Channel, *, reason: str, now: datetime
) -> list[str]:
    """Cancel the person's intents on ``channel`` not yet sent (queued or deferred).

    The worker acks a cancelled intent without sending it. Returns the ids cancelled.
    """
    with transaction(engine) as conn:
        return cancel_waiting(conn, person_id, channel, reason=reason, now=utc(now))
