"""The receipts feed's outbox: what the webhook owes ``dunning.receipts``, kept in the ledger.

Each receipt the webhook stores gets a ``receipt_feed`` row in the same transaction: the feed
message as it will be published (routing key, message id, JSON body), with ``published_at``
NULL. A drainer (``dunning.receipts.feed``) takes the oldest unpublished rows in id order,
publishes them with confirms and marks them published. A receipt in the ledger is therefore
never without its feed entry, and a process that dies before publishing leaves the entry for
the next drainer; one that dies between the confirm and the mark leaves a batch that is
published again (at least once on the wire, de-duplicated by message id).

Taking a batch:

- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` in a transaction held across the publish,
  so concurrent drainers (several webhook processes) take disjoint batches, and the locks go
  with the connection of a drainer that dies.
- SQLite: the batch is read without a lock and marked after the confirm. SQLite has one write
  lock for the whole database; holding it across a publish would make every callback wait on
  the broker. One drainer runs per webhook process, so only several webhook processes on one
  SQLite file can publish a batch twice.

Receipts stored before this table existed (migration 0007) have no entry: the ledger cannot
tell which of them reached the feed, and a reader catches up on those from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    Row,
    Select,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from dunning.clock import Clock, utc
from dunning.errors import LedgerError
from dunning.ledger.engine import READ_ONLY
from dunning.ledger.schema import UTCDateTime, metadata

__all__ = [
    "FeedMessage",
    "PendingMessage",
    "add_to_feed",
    "publish_pending",
    "receipt_feed",
    "unpublished_count",
]

_UNPUBLISHED = "published_at IS NULL"

receipt_feed = Table(
    "receipt_feed",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the publishing order
    Column("receipt_id", Integer, nullable=False, unique=True),  # receipts.id
    Column("routing_key", String(64), nullable=False),  # <channel>.<status>
    Column("message_id", String(192), nullable=False),  # <provider_ref>:<status>
    Column("body", Text, nullable=False),  # the JSON body, as of the receipt's storing
    Column("stored_at", UTCDateTime(), nullable=False),
    Column("published_at", UTCDateTime()),  # null: owed to the feed
    # Only the rows still owed are indexed: the drainer's query stays small however long the
    # history grows.
    Index(
        "ix_receipt_feed_unpublished",
        "id",
        postgresql_where=text(_UNPUBLISHED),
        sqlite_where=text(_UNPUBLISHED),
    ),
)


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One receipt's message on the feed (the exchange is the publisher's business)."""

    routing_key: str
    message_id: str
    body: str


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A feed entry taken for publishing: its row id, its receipt and its message."""

    id: int
    receipt_id: int
    message: FeedMessage


def add_to_feed(
    conn: Connection, entries: Sequence[tuple[int, FeedMessage]], *, now: datetime
) -> None:
    """Owe each ``(receipt_id, message)`` to the feed, in the caller's (storing) transaction."""
    if not entries:
        return
    stored_at = utc(now)
    conn.execute(
        insert(receipt_feed),
        [
            {
                "receipt_id": receipt_id,
                "routing_key": message.routing_key,
                "message_id": message.message_id,
                "body": message.body,
                "stored_at": stored_at,
                "published_at": None,
            }
            for receipt_id, message in entries
        ],
    )


def publish_pending(
    engine: Engine,
    publish: Callable[[Sequence[PendingMessage]], None],
    *,
    clock: Clock,
    limit: int,
) -> int:
    """Take up to ``limit`` of the oldest unpublished entries, hand them to ``publish`` and mark
    them published once it returns; returns how many were published (0: nothing owed).

    ``publish`` must return only when the broker confirmed every message; whatever it raises
    propagates and leaves the batch unpublished, to be taken again. A LedgerError means the
    ledger failed (the batch may then have been published without being marked).
    """
    if engine.dialect.name == "postgresql":
        return _publish_locked(engine, publish, clock, limit)
    return _publish_then_mark(engine, publish, clock, limit)


def _oldest_unpublished(limit: int) -> Select[tuple[int, int, str, str, str]]:
    return (
        select(
            receipt_feed.c.id,
            receipt_feed.c.receipt_id,
            receipt_feed.c.routing_key,
            receipt_feed.c.message_id,
            receipt_feed.c.body,
        )
        .where(receipt_feed.c.published_at.is_(None))
        .order_by(receipt_feed.c.id)
        .limit(limit)
    )


def _pending(rows: Sequence[Row[tuple[int, int, str, str, str]]]) -> list[PendingMessage]:
    return [
        PendingMessage(
            row.id, row.receipt_id, FeedMessage(row.routing_key, row.message_id, row.body)
        )
        for row in rows
    ]


def _mark_published(conn: Connection, batch: Sequence[PendingMessage], now: datetime) -> None:
    conn.execute(
        update(receipt_feed)
        .where(
            receipt_feed.c.id.in_([entry.id for entry in batch]),
            receipt_feed.c.published_at.is_(None),
        )
        .values(published_at=utc(now))
    )


def _publish_locked(
    engine: Engine,
    publish: Callable[[Sequence[PendingMessage]], None],
    clock: Clock,
    limit: int,
) -> int:
    """PostgreSQL: the batch's rows stay locked from the take to the mark (SKIP LOCKED lets
    another drainer take the next rows meanwhile)."""
    with _transaction(engine) as conn:
        rows = conn.execute(_oldest_unpublished(limit).with_for_update(skip_locked=True)).all()
        batch = _pending(rows)
        if batch:
            publish(batch)
            _mark_published(conn, batch, clock.now())
    return len(batch)


def _publish_then_mark(
    engine: Engine,
    publish: Callable[[Sequence[PendingMessage]], None],
    clock: Clock,
    limit: int,
) -> int:
    """SQLite: read, publish, then mark in a short write transaction (see the module notes)."""
    with _transaction(engine.execution_options(**{READ_ONLY: True})) as conn:
        batch = _pending(conn.execute(_oldest_unpublished(limit)).all())
    if not batch:
        return 0
    publish(batch)
    with _transaction(engine) as conn:
        _mark_published(conn, batch, clock.now())
    return len(batch)


def unpublished_count(engine: Engine) -> int:
    """How many stored receipts the feed is still owed."""
    with _transaction(engine.execution_options(**{READ_ONLY: True})) as conn:
        count = conn.scalar(
            select(func.count())
            .select_from(receipt_feed)
            .where(receipt_feed.c.published_at.is_(None))
        )
    return int(count or 0)


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; database faults come out as LedgerError, anything else as it is."""
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise LedgerError(f"ledger transaction failed: {exc}") from exc
