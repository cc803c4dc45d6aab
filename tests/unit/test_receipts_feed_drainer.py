"""The receipts feed's drainer over the memory broker: it publishes what the ledger owes, at
start-up and after each stored receipt, and keeps it owed while the broker is down."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from dunning.broker import MemoryBroker
from dunning.broker.base import Publisher
from dunning.broker.topology import RECEIPTS_FEED_QUEUE, build_topology
from dunning.clock import ManualClock
from dunning.errors import BrokerConnectionError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.receipts_outbox import unpublished_count
from dunning.ledger.receipts_store import ReceiptInput
from dunning.receipts.feed import RECEIPT_SCHEMA, ReceiptFeed, feed_message
from dunning.receipts.service import ReceiptService
from tests.factories import T0


class Broker:
    """The memory broker behind a connection that can be refused, as when RabbitMQ is down."""

    def __init__(self) -> None:
        self.server = MemoryBroker()
        self.server.declare(build_topology(channels=[Channel.SMS]))
        self.down = False
        self.connections = 0

    def connect(self) -> Publisher:
        if self.down:
            raise BrokerConnectionError("connect: [Errno 111] Connection refused")
        self.connections += 1
        return self.server.publisher()

    def feed(self) -> list[tuple[str, str | None, dict[str, object]]]:
        """Take everything waiting in the feed queue: (routing key, message id, body)."""
        reader = self.server.publisher()
        out = []
        while (delivery := reader.get(RECEIPTS_FEED_QUEUE)) is not None:
            out.append((delivery.routing_key, delivery.message_id, json.loads(delivery.body)))
            reader.ack(delivery)
        return out


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path}/ledger.db")
    yield opened
    opened.close()


def quick_feed(ledger: Ledger, broker: Broker) -> ReceiptFeed:
    return ReceiptFeed(
        ledger, ManualClock(T0), broker.connect, retry_initial_s=0.01, retry_max_s=0.05
    )


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)  # poll interval of the condition


async def test_what_a_killed_webhook_left_owed_is_published_at_start(ledger: Ledger) -> None:
    # Stored and owed, never published: what a process killed after answering leaves.
    items = [ReceiptInput(f"SM{i}", Channel.SMS, "delivered", rank=5) for i in range(3)]
    owed = functools.partial(feed_message, received_at=T0)
    ledger.store_receipts(items, now=T0, feed=owed)
    broker = Broker()
    feed = quick_feed(ledger, broker)
    feed.start()
    try:
        await feed.flush(5)
    finally:
        await feed.stop()
    messages = broker.feed()
    assert [(key, mid) for key, mid, _ in messages] == [
        ("sms.delivered", "SM0:delivered"),
        ("sms.delivered", "SM1:delivered"),
        ("sms.delivered", "SM2:delivered"),
    ]
    body = messages[0][2]
    assert body["schema"] == RECEIPT_SCHEMA
    assert body["received_at"] == T0.isoformat()
    assert (body["intent_id"], body["applied"], body["final"]) == (None, False, True)
    assert unpublished_count(ledger._engine) == 0


async def test_receipts_wait_in_the_ledger_while_the_broker_is_down(ledger: Ledger) -> None:
    broker = Broker()
    broker.down = True
    feed = quick_feed(ledger, broker)
    service = ReceiptService(ledger, ManualClock(T0), feed=feed)
    try:
        with capture_logs() as logs:
            for i in range(3):
                outcome = await service.record(
                    Channel.SMS, f"SM{i}", "delivered", intent_id=None, raw={}
                )
                assert outcome.kind == "stored"  # recorded: the callback is answered 200
            failed_so_far = feed.failed_passes
            await until(lambda: feed.failed_passes >= failed_so_far + 2)  # tried, will try again
        assert unpublished_count(ledger._engine) == 3
        assert broker.feed() == []
        failed = [e for e in logs if e["event"] == "receipts.publish_failed"]
        assert failed[-1]["unpublished"] == 3
        assert "Connection refused" in failed[-1]["error"]

        broker.down = False
        await service.drain(5)
    finally:
        await service.stop()
    assert [mid for _, mid, _ in broker.feed()] == [
        "SM0:delivered",
        "SM1:delivered",
        "SM2:delivered",
    ]
    assert unpublished_count(ledger._engine) == 0
    assert feed.failures == 0


async def test_a_duplicate_callback_is_not_owed_again(ledger: Ledger) -> None:
    broker = Broker()
    service = ReceiptService(ledger, ManualClock(T0), feed=quick_feed(ledger, broker))
    try:
        for _ in range(2):
            await service.record(Channel.SMS, "SM1", "sent", intent_id=None, raw={})
        await service.drain(5)
    finally:
        await service.stop()
    assert [mid for _, mid, _ in broker.feed()] == ["SM1:sent"]
