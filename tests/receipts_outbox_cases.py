"""The receipts feed's outbox in the ledger, written once and run on SQLite (unit) and
PostgreSQL (integration).

A test module subclasses :class:`ReceiptsOutboxCases` and provides a ``ledger`` fixture (a
migrated ledger with no receipts) and a ``ledger_url`` fixture (its URL).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from alembic import command
from sqlalchemy import func, inspect, select

from dunning.clock import ManualClock
from dunning.errors import PublishError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger import engine as engines
from dunning.ledger.receipts_outbox import (
    FeedMessage,
    PendingMessage,
    publish_pending,
    receipt_feed,
    unpublished_count,
)
from dunning.ledger.receipts_store import ReceiptInput, ReceiptOutcome
from dunning.ledger.schema import receipts
from tests.factories import T0

#: Long enough for a thread that is not blocked; a blocked one shows by still running after it.
JOIN_S = 10.0


def feed_entry(item: ReceiptInput, outcome: ReceiptOutcome) -> FeedMessage:
    return FeedMessage(
        routing_key=f"{item.channel.value}.{item.status}",
        message_id=f"{item.provider_ref}:{item.status}",
        body=f'{{"kind": "{outcome.kind}"}}',
    )


def store(ledger: Ledger, *refs: str, status: str = "delivered", owed: bool = True) -> None:
    """Store one SMS receipt per ref in one transaction, owed to the feed when ``owed``."""
    items = [ReceiptInput(ref, Channel.SMS, status, rank=5) for ref in refs]
    ledger.store_receipts(items, now=T0, feed=feed_entry if owed else None)


def count(ledger: Ledger, table: object) -> int:
    with ledger._engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


class Collect:
    """A ``publish`` that records each batch's message ids (the broker confirmed them all)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, batch: Sequence[PendingMessage]) -> None:
        self.batches.append([entry.message.message_id for entry in batch])


def refuse(batch: Sequence[PendingMessage]) -> None:
    raise PublishError(f"{len(batch)} message(s) nacked by the broker")


class ReceiptsOutboxCases:
    def test_a_stored_receipt_is_owed_to_the_feed_once(self, ledger: Ledger) -> None:
        store(ledger, "SM1", "SM2")
        store(ledger, "SM1")  # the same provider event again: a duplicate, not owed again
        assert unpublished_count(ledger._engine) == 2
        with ledger._engine.connect() as conn:
            rows = conn.execute(
                select(receipt_feed.c.message_id, receipt_feed.c.routing_key, receipts.c.id)
                .join(receipts, receipts.c.id == receipt_feed.c.receipt_id)
                .order_by(receipt_feed.c.id)
            ).all()
        assert [(r.message_id, r.routing_key) for r in rows] == [
            ("SM1:delivered", "sms.delivered"),
            ("SM2:delivered", "sms.delivered"),
        ]

    def test_the_entry_is_written_in_the_receipts_transaction(self, ledger: Ledger) -> None:
        def broken(item: ReceiptInput, outcome: ReceiptOutcome) -> FeedMessage:
            raise RuntimeError("no feed message")

        items = [ReceiptInput("SM1", Channel.SMS, "delivered", rank=5)]
        with pytest.raises(RuntimeError):
            ledger.store_receipts(items, now=T0, feed=broken)
        assert count(ledger, receipts) == 0  # no receipt without its feed entry
        assert count(ledger, receipt_feed) == 0

    def test_without_a_feed_nothing_is_owed(self, ledger: Ledger) -> None:
        store(ledger, "SM1", owed=False)  # `dunning webhook --no-publish`
        assert count(ledger, receipts) == 1
        assert unpublished_count(ledger._engine) == 0

    def test_the_oldest_are_published_first_in_batches(self, ledger: Ledger) -> None:
        store(ledger, "SM1", "SM2", "SM3")
        store(ledger, "SM4", "SM5")
        publish, clock = Collect(), ManualClock(T0)
        taken = [publish_pending(ledger._engine, publish, clock=clock, limit=2) for _ in range(4)]
        assert taken == [2, 2, 1, 0]
        assert publish.batches == [
            ["SM1:delivered", "SM2:delivered"],
            ["SM3:delivered", "SM4:delivered"],
            ["SM5:delivered"],
        ]
        assert unpublished_count(ledger._engine) == 0
        with ledger._engine.connect() as conn:
            marked = set(conn.scalars(select(receipt_feed.c.published_at)))
        assert marked == {T0}

    def test_a_refused_batch_stays_owed_and_is_taken_again(self, ledger: Ledger) -> None:
        store(ledger, "SM1", "SM2", "SM3")
        clock = ManualClock(T0)
        with pytest.raises(PublishError):
            publish_pending(ledger._engine, refuse, clock=clock, limit=2)
        assert unpublished_count(ledger._engine) == 3
        publish = Collect()
        assert publish_pending(ledger._engine, publish, clock=clock, limit=2) == 2
        assert publish.batches == [["SM1:delivered", "SM2:delivered"]]

    def test_receipts_are_stored_while_a_batch_is_being_published(self, ledger: Ledger) -> None:
        """Publishing holds no lock that storing needs: callbacks never wait on the broker."""
        store(ledger, "SM1")
        publishing, release = threading.Event(), threading.Event()

        def slow(batch: Sequence[PendingMessage]) -> None:
            publishing.set()
            release.wait(JOIN_S)

        drainer = threading.Thread(
            target=publish_pending,
            args=(ledger._engine, slow),
            kwargs={"clock": ManualClock(T0), "limit": 10},
        )
        drainer.start()
        try:
            assert publishing.wait(JOIN_S)
            storer = threading.Thread(target=store, args=(ledger, "SM2"))
            storer.start()
            storer.join(JOIN_S)
            stored_meanwhile = not storer.is_alive()
        finally:
            release.set()
            drainer.join(JOIN_S)
        assert stored_meanwhile
        assert unpublished_count(ledger._engine) == 1  # SM2, stored after the batch was taken

    def test_the_outbox_comes_and_goes_with_migration_0007(
        self, ledger: Ledger, ledger_url: str
    ) -> None:
        store(ledger, "SM1")
        engine = engines.make_engine(ledger_url)
        try:
            with engine.begin() as conn:
                command.downgrade(engines.alembic_config(conn), "0006")
            assert "receipt_feed" not in inspect(engine).get_table_names()
            engines.upgrade_head(engine)
            assert "receipt_feed" in inspect(engine).get_table_names()
            # Receipts stored before 0007 are not owed: whether they reached the feed is unknown.
            assert unpublished_count(engine) == 0
            assert engines.current_revision(engine) == engines.head_revision()
        finally:
            engine.dispose()
