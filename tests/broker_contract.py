"""One contract, two brokers: the same cases run on the memory broker and on real RabbitMQ.

A test module supplies a ``harness`` fixture (a :class:`Harness`) and imports the ``test_*``
functions below; pytest collects them there. Every case starts from an empty topology.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from dunning.broker.base import AsyncBroker, Delivery, OutboundMessage, Publisher
from dunning.broker.topology import (
    INTENTS_EXCHANGE,
    RECEIPTS_EXCHANGE,
    RECEIPTS_FEED_QUEUE,
    UNROUTED_QUEUE,
    Topology,
    build_topology,
    dead_queue,
    delay_exchange,
    work_queue,
)
from dunning.errors import BrokerConnectionError, PublishError, TopologyMismatchError

DELIVERY_LIMIT = 2
TOPOLOGY = build_topology(delivery_limit=DELIVERY_LIMIT, delay_steps_s=(1,))
SMS = work_queue("sms")


class Harness(Protocol):
    topology: Topology

    def publisher(self) -> Publisher: ...

    def client(self) -> AsyncBroker: ...

    def drop(self, client: AsyncBroker) -> None:
        """Break the client's connection as a network failure would."""


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``condition`` until true; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.01)


def depth(publisher: Publisher, queue: str) -> Callable[[], bool]:
    return lambda: publisher.queue_depth(queue) == 1


@dataclass
class Recorder:
    """A handler that keeps every delivery and then acks, rejects, or holds it."""

    client: AsyncBroker
    action: str = "ack"  # ack | requeue | dead | hold
    seen: list[Delivery] = field(default_factory=list)
    at_s: list[float] = field(default_factory=list)

    async def __call__(self, delivery: Delivery) -> None:
        self.seen.append(delivery)
        self.at_s.append(time.monotonic())
        if self.action == "ack":
            await self.client.ack(delivery)
        elif self.action in {"requeue", "dead"}:
            await self.client.reject(delivery, requeue=self.action == "requeue")


def sms(body: bytes = b'{"intent": 1}', **headers: Any) -> OutboundMessage:
    return OutboundMessage(INTENTS_EXCHANGE, "sms", body, headers, message_id="m-1")


async def connected(harness: Harness, action: str = "ack") -> tuple[AsyncBroker, Recorder]:
    client = harness.client()
    await client.connect()
    await client.declare(harness.topology)
    recorder = Recorder(client, action)
    await client.consume(SMS, prefetch=10, handler=recorder)
    return client, recorder


async def test_confirmed_message_is_consumed_exactly_once(harness: Harness) -> None:
    publisher = harness.publisher()
    assert publisher.publish_many([sms(b"one", trace="t-1")]) == 1
    client, recorder = await connected(harness)
    await wait_for(lambda: len(recorder.seen) == 1)
    await client.close()
    await client.wait_closed()
    again, second = await connected(harness)
    await again.close()
    assert [d.body for d in recorder.seen + second.seen] == [b"one"]
    got = recorder.seen[0]
    assert (got.queue, got.routing_key, got.redelivered) == (SMS, "sms", False)
    assert got.headers["trace"] == "t-1"
    assert got.message_id == "m-1"
    assert publisher.queue_depth(SMS) == 0
    publisher.close()


async def test_async_publish_with_confirm(harness: Harness) -> None:
    client, recorder = await connected(harness)
    await client.publish(sms(b"from-worker"))
    await wait_for(lambda: len(recorder.seen) == 1)
    assert recorder.seen[0].body == b"from-worker"
    with pytest.raises(PublishError):
        await client.publish(OutboundMessage("dunning.dlx", "no-such-channel", b"x"))
    await client.close()


async def test_unacked_message_is_redelivered_after_connection_loss(harness: Harness) -> None:
    publisher = harness.publisher()
    publisher.publish_many([sms(b"held")])
    client, holder = await connected(harness, action="hold")
    await wait_for(lambda: len(holder.seen) == 1)
    first = holder.seen[0]
    harness.drop(client)
    with pytest.raises(BrokerConnectionError):
        await asyncio.wait_for(client.wait_closed(), timeout=10)
    await client.connect()  # the same object reconnects; older deliveries become stale
    recorder = Recorder(client, "ack")
    await client.consume(SMS, prefetch=10, handler=recorder)
    await wait_for(lambda: len(recorder.seen) == 1)
    again = recorder.seen[0]
    assert (again.body, again.redelivered) == (b"held", True)
    assert again.generation == first.generation + 1
    await client.ack(first)  # stale: dropped, must not disturb the live channel
    await client.publish(sms(b"after"))
    await wait_for(lambda: len(recorder.seen) == 2)
    await client.close()
    assert publisher.queue_depth(SMS) == 0
    publisher.close()


async def test_poison_message_dead_letters_past_delivery_limit(harness: Harness) -> None:
    publisher = harness.publisher()
    publisher.publish_many([sms(b"poison")])
    client, recorder = await connected(harness, action="requeue")
    await wait_for(depth(publisher, dead_queue("sms")))
    await client.close()
    assert len(recorder.seen) == DELIVERY_LIMIT + 1
    assert [d.redelivered for d in recorder.seen] == [False] + [True] * DELIVERY_LIMIT
    dead = publisher.get(dead_queue("sms"))
    assert dead is not None
    assert dead.body == b"poison"
    death = dead.headers["x-death"][0]
    assert (death["queue"], death["reason"], death["count"]) == (SMS, "delivery_limit", 1)
    assert list(death["routing-keys"]) == ["sms"]
    publisher.ack(dead)
    publisher.close()


async def test_reject_without_requeue_dead_letters_with_reason(harness: Harness) -> None:
    publisher = harness.publisher()
    publisher.publish_many([sms(b"bad", **{"x-dunning-error": "DecodeError"})])
    client, recorder = await connected(harness, action="dead")
    await wait_for(depth(publisher, dead_queue("sms")))
    await client.close()
    assert len(recorder.seen) == 1
    dead = publisher.get(dead_queue("sms"))
    assert dead is not None
    assert (dead.body, dead.routing_key) == (b"bad", "sms")
    assert dead.headers["x-dunning-error"] == "DecodeError"
    death = dead.headers["x-death"][0]
    assert (death["queue"], death["reason"], death["exchange"]) == (
        SMS,
        "rejected",
        "dunning.intents",
    )
    assert dead.headers["x-first-death-reason"] == "rejected"
    publisher.reject(dead, requeue=True)  # admin tools put it back; it stays in the DLQ
    await wait_for(depth(publisher, dead_queue("sms")))
    publisher.close()


async def test_delayed_message_waits_then_returns_to_its_work_queue(harness: Harness) -> None:
    publisher = harness.publisher()
    client, recorder = await connected(harness)
    published_at = time.monotonic()
    publisher.publish_many([OutboundMessage(delay_exchange(1), "sms", b"later")])
    assert publisher.queue_depth(delay_exchange(1)) == 1
    await wait_for(lambda: len(recorder.seen) == 1)
    await client.close()
    waited_s = recorder.at_s[0] - published_at
    assert waited_s >= 0.95, f"delivered after {waited_s:.3f}s, before its 1 s delay"
    got = recorder.seen[0]
    assert (got.queue, got.body, got.routing_key) == (SMS, b"later", "sms")
    assert got.headers["x-death"][0]["reason"] == "expired"
    assert got.headers["x-death"][0]["queue"] == delay_exchange(1)
    publisher.close()


async def test_unknown_routing_key_goes_to_unrouted(harness: Harness) -> None:
    publisher = harness.publisher()
    publisher.publish_many([OutboundMessage(INTENTS_EXCHANGE, "fax", b"?")])
    await wait_for(depth(publisher, UNROUTED_QUEUE))
    got = publisher.get(UNROUTED_QUEUE)
    assert got is not None
    assert (got.body, got.routing_key) == (b"?", "fax")
    publisher.ack(got)
    assert publisher.get(UNROUTED_QUEUE) is None
    publisher.close()


async def test_unroutable_or_unknown_exchange_raises_publish_error(harness: Harness) -> None:
    publisher = harness.publisher()
    with pytest.raises(PublishError):
        publisher.publish_many([OutboundMessage("dunning.dlx", "no-such-channel", b"x")])
    with pytest.raises(PublishError):
        publisher.publish_many([OutboundMessage("dunning.nowhere", "sms", b"x")])
    assert publisher.publish_many([sms()]) == 1  # still usable afterwards
    publisher.close()


async def test_every_receipt_lands_in_the_receipts_feed(harness: Harness) -> None:
    publisher = harness.publisher()
    keys = ["sms.delivered", "voice.no-answer", "email.bounced", "letter.mailed"]
    receipts = [OutboundMessage(RECEIPTS_EXCHANGE, key, key.encode(), {}, key) for key in keys]
    assert publisher.publish_many(receipts) == len(keys)  # mandatory: none came back unroutable
    bodies = []
    while (delivery := publisher.get(RECEIPTS_FEED_QUEUE)) is not None:
        bodies.append(delivery.body)
        publisher.ack(delivery)
    assert bodies == [key.encode() for key in keys]
    publisher.close()


async def test_declare_twice_is_a_no_op_and_mismatch_is_named(harness: Harness) -> None:
    publisher = harness.publisher()
    publisher.publish_many([sms(b"kept")])
    publisher.declare(harness.topology)
    assert publisher.queue_depth(SMS) == 1
    with pytest.raises(TopologyMismatchError) as caught:
        publisher.declare(build_topology(delivery_limit=DELIVERY_LIMIT + 1, delay_steps_s=(1,)))
    assert (caught.value.name, caught.value.argument) == (SMS, "x-delivery-limit")
    assert str(DELIVERY_LIMIT) in str(caught.value)
    assert publisher.queue_depth(SMS) == 1  # usable after the refusal
    publisher.close()


async def test_prefetch_bounds_unacked_and_consumers_share_a_queue(harness: Harness) -> None:
    publisher = harness.publisher()
    publisher.publish_many(sms(str(i).encode()) for i in range(6))
    clients: list[tuple[AsyncBroker, Recorder]] = []
    for _ in range(2):
        client = harness.client()
        await client.connect()
        recorder = Recorder(client, "hold")
        await client.consume(SMS, prefetch=2, handler=recorder)
        clients.append((client, recorder))
    await wait_for(lambda: sum(len(r.seen) for _, r in clients) == 4)
    assert [len(r.seen) for _, r in clients] == [2, 2]
    for client, recorder in clients:
        recorder.action = "ack"
        for delivery in list(recorder.seen):
            await client.ack(delivery)
    await wait_for(lambda: sum(len(r.seen) for _, r in clients) == 6)
    for client, _ in clients:
        await client.close()
    bodies = sorted(d.body for _, r in clients for d in r.seen)
    assert bodies == [str(i).encode() for i in range(6)]
    publisher.close()


ALL: list[Callable[..., Awaitable[None]]] = [
    test_confirmed_message_is_consumed_exactly_once,
    test_async_publish_with_confirm,
    test_unacked_message_is_redelivered_after_connection_loss,
    test_poison_message_dead_letters_past_delivery_limit,
    test_reject_without_requeue_dead_letters_with_reason,
    test_delayed_message_waits_then_returns_to_its_work_queue,
    test_unknown_routing_key_goes_to_unrouted,
    test_unroutable_or_unknown_exchange_raises_publish_error,
    test_every_receipt_lands_in_the_receipts_feed,
    test_declare_twice_is_a_no_op_and_mismatch_is_named,
    test_prefetch_bounds_unacked_and_consumers_share_a_queue,
]
