"""The broker contract on the in-process memory broker, plus what only it offers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dunning.broker import memory_server, open_async_broker, open_publisher, reset_memory_server
from dunning.broker.base import AsyncBroker, Delivery, Publisher
from dunning.broker.memory.client import MemoryClient
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import Topology, work_queue
from dunning.errors import BrokerConnectionError, ConfigError
from tests.broker_contract import (  # noqa: F401 -- imported test functions are collected here
    SMS,
    TOPOLOGY,
    Recorder,
    sms,
    test_async_publish_with_confirm,
    test_confirmed_message_is_consumed_exactly_once,
    test_declare_twice_is_a_no_op_and_mismatch_is_named,
    test_delayed_message_waits_then_returns_to_its_work_queue,
    test_every_receipt_lands_in_the_receipts_feed,
    test_poison_message_dead_letters_past_delivery_limit,
    test_prefetch_bounds_unacked_and_consumers_share_a_queue,
    test_reject_without_requeue_dead_letters_with_reason,
    test_unacked_message_is_redelivered_after_connection_loss,
    test_unknown_routing_key_goes_to_unrouted,
    test_unroutable_or_unknown_exchange_raises_publish_error,
    wait_for,
)


class MemoryHarness:
    topology: Topology = TOPOLOGY

    def __init__(self) -> None:
        self.server = MemoryBroker()
        self.server.declare(self.topology)

    def publisher(self) -> Publisher:
        return self.server.publisher()

    def client(self) -> AsyncBroker:
        return self.server.client()

    def drop(self, client: AsyncBroker) -> None:
        assert isinstance(client, MemoryClient)
        client.simulate_connection_loss()


@pytest.fixture
def harness() -> MemoryHarness:
    return MemoryHarness()


def test_memory_url_shares_one_server_until_reset() -> None:
    fresh = reset_memory_server()
    assert memory_server() is fresh
    publisher = open_publisher("memory://", TOPOLOGY)
    publisher.publish_many([sms(b"shared")])
    assert open_publisher("memory://").queue_depth(SMS) == 1
    assert isinstance(open_async_broker("memory://"), MemoryClient)
    assert reset_memory_server() is not fresh
    with pytest.raises(ConfigError):
        open_publisher("redis://localhost")


async def test_publisher_in_another_thread_feeds_the_loop_consumer(harness: MemoryHarness) -> None:
    client, recorder = await _consumer(harness)
    publisher = harness.publisher()
    thread = threading.Thread(
        target=lambda: publisher.publish_many(sms(str(i).encode()) for i in range(50))
    )
    thread.start()
    await wait_for(lambda: len(recorder.seen) == 50)
    thread.join()
    assert sorted(int(d.body) for d in recorder.seen) == list(range(50))
    await client.close()


async def test_close_returns_unacked_and_wait_closed_returns(harness: MemoryHarness) -> None:
    harness.publisher().publish_many([sms(b"held")])
    client, holder = await _consumer(harness, "hold")
    await wait_for(lambda: len(holder.seen) == 1)
    await client.close()
    await client.wait_closed()
    assert harness.server.queue_depth(SMS) == 1
    with pytest.raises(BrokerConnectionError):
        await client.publish(sms())


async def test_ttl_expires_without_any_loop_attached() -> None:
    server = MemoryBroker()
    server.declare(TOPOLOGY)
    publisher = server.publisher()
    from dunning.broker.base import OutboundMessage

    publisher.publish_many([OutboundMessage("dunning.delay.1s", "voice", b"v")])
    assert publisher.queue_depth(work_queue("voice")) == 0
    await wait_for(lambda: publisher.queue_depth(work_queue("voice")) == 1, timeout_s=5)
    got = publisher.get(work_queue("voice"))
    assert got is not None
    assert got.headers["x-death"][0]["reason"] == "expired"


async def test_repeated_deaths_count_in_one_entry(harness: MemoryHarness) -> None:
    publisher = harness.publisher()
    publisher.publish_many([sms(b"again")])
    dead_name = "dunning.sms.dead"
    deliveries: list[Delivery] = []
    for round_ in range(2):
        client, recorder = await _consumer(harness, "dead")
        await wait_for(lambda: publisher.queue_depth(dead_name) == 1)
        await client.close()
        deliveries.extend(recorder.seen)
        dead = publisher.get(dead_name)
        assert dead is not None
        assert dead.headers["x-death"][0]["count"] == round_ + 1
        publisher.ack(dead)
        publisher.publish_many([sms(dead.body, **{"x-death": dead.headers["x-death"]})])
    assert len(deliveries) == 2


async def _consumer(harness: MemoryHarness, action: str = "ack") -> tuple[AsyncBroker, Recorder]:
    client = harness.client()
    await client.connect()
    recorder = Recorder(client, action)
    await client.consume(SMS, prefetch=100, handler=recorder)
    await asyncio.sleep(0)
    return client, recorder


async def test_delay_published_before_any_consumer_still_fires(harness: MemoryHarness) -> None:
    from dunning.broker.base import OutboundMessage

    harness.publisher().publish_many([OutboundMessage("dunning.delay.1s", "sms", b"early")])
    client, recorder = await _consumer(harness)
    await wait_for(lambda: len(recorder.seen) == 1, timeout_s=5)
    assert recorder.seen[0].body == b"early"
    await client.close()


def test_max_length_drops_the_oldest_ready_message() -> None:
    from dunning.broker.base import OutboundMessage
    from dunning.broker.topology import Binding, ExchangeSpec, QueueSpec

    server = MemoryBroker()
    capped = QueueSpec("test.capped", {"x-max-length": 2}, (Binding("test.fan", ""),))
    server.declare(Topology((ExchangeSpec("test.fan", "fanout"),), (capped,)))
    publisher = server.publisher()
    publisher.publish_many(OutboundMessage("test.fan", "", body) for body in (b"1", b"2", b"3"))
    kept = []
    while (delivery := publisher.get("test.capped")) is not None:
        kept.append(delivery.body)
        publisher.ack(delivery)
    assert kept == [b"2", b"3"]
