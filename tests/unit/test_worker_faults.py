"""Infrastructure faults on the memory broker: a ledger, rate-limiter store or broker publish that
fails for a while must never spend a message's delivery attempts.

The ledger double wraps the real SQLite ledger and fails every call (``ping`` included) while
``down``; the limiter double fails its store the same way. While either is down the worker must
stop consuming, hand its messages back through a delay queue without a requeue, and after the
store answers again send every intent exactly once. Nothing may reach the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dunning.broker.base import Delivery, Handler, OutboundMessage
from dunning.broker.memory.client import MemoryClient
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import (
    DELAY_STEPS_S,
    INTENTS_EXCHANGE,
    Topology,
    build_topology,
    dead_queue,
    delay_exchange,
    work_queue,
)
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import SystemClock
from dunning.errors import LedgerError, PublishError, TransientChannelError
from dunning.intents import Channel, ContactIntent, decode_intent, encode_intent
from dunning.ledger import Ledger
from dunning.records import IntentState
from dunning.settings import Settings
from dunning.workers import headers as h
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.ratelimit.redis import LimiterUnavailableError
from dunning.workers.runtime import Worker
from tests.factories import make_intent
from tests.fault_ledger import FaultInjectingLedger

DELIVERY_LIMIT = 5


def fresh() -> ContactIntent:
    now = datetime.now(UTC)
    return make_intent(
        Channel.SMS, created_at=now - timedelta(minutes=1), expires_at=now + timedelta(hours=1)
    )


class FlakyLedger(FaultInjectingLedger):
    """The real ledger, except that every call fails while ``down`` (as PostgreSQL gone would);
    ``poison`` names intents whose claim fails even while the database answers."""

    def __init__(self, inner: Ledger) -> None:
        super().__init__(inner)
        self.down = False
        self.poison: set[str] = set()
        self.calls_while_down: Counter[str] = Counter()

    def before(self, call: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        if self.down:
            self.calls_while_down[call] += 1
            raise LedgerError("ledger transaction failed: connection refused (simulated)")
        intent_id = args[0].intent_id if call == "claim" else None
        if intent_id in self.poison:
            raise LedgerError(f"ledger transaction failed: value too long for {intent_id}")


class FlakyLimiter:
    """A limiter whose store (Redis in production) is unreachable while ``down``."""

    def __init__(self) -> None:
        self.down = False

    async def acquire(self, *keys: str) -> float:
        if self.down:
            raise LimiterUnavailableError("rate limiter store failed: connection refused")
        return 0.0

    def pause(self, key: str, seconds: float) -> None:
        return None

    async def ping(self) -> None:
        if self.down:
            raise LimiterUnavailableError("rate limiter store failed: connection refused")


class FlakyBroker:
    """The memory broker's client whose publishes are refused while ``down``; counts rejects."""

    def __init__(self, inner: MemoryClient) -> None:
        self.inner = inner
        self.down = False
        self.requeues = 0

    async def connect(self) -> None:
        await self.inner.connect()

    async def declare(self, topology: Topology) -> None:
        await self.inner.declare(topology)

    async def consume(self, queue: str, *, prefetch: int, handler: Handler) -> None:
        await self.inner.consume(queue, prefetch=prefetch, handler=handler)

    async def cancel(self) -> None:
        await self.inner.cancel()

    async def wait_closed(self) -> None:
        await self.inner.wait_closed()

    async def ack(self, delivery: Delivery) -> None:
        await self.inner.ack(delivery)

    async def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        self.requeues += requeue
        await self.inner.reject(delivery, requeue=requeue)

    async def publish(self, message: OutboundMessage) -> None:
        if self.down:
            raise PublishError("nacked by the broker (simulated)")
        await self.inner.publish(message)

    async def close(self) -> None:
        await self.inner.close()


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.server = MemoryBroker()
        self.server.declare(build_topology(delivery_limit=DELIVERY_LIMIT))
        self.inner = Ledger.open(f"sqlite:///{tmp / 'ledger.db'}")
        self.ledger = FlakyLedger(self.inner)
        self.limiter = FlakyLimiter()
        self.broker = FlakyBroker(self.server.client())
        self.counter = OutcomeCounter()
        self.sends: Counter[str] = Counter()
        self.on_send: Callable[[ContactIntent, int], None] = lambda intent, attempt: None
        self.settings = Settings(
            max_in_flight=2, reconcile_after_s=1, delivery_limit=DELIVERY_LIMIT,
            retry_delays_s=(1,), shutdown_grace_s=5,
        )  # fmt: skip

    async def send(self, intent: ContactIntent, attempt: int) -> SendResult:
        self.sends[intent.intent_id] += 1
        self.on_send(intent, attempt)
        return SendResult(provider_ref=f"SM{intent.intent_id[:32]}", status="queued")

    async def lookup(self, intent: ContactIntent, since: datetime) -> SendResult | None:
        """What the provider has: every send this rig accepted (Twilio's message list)."""
        if self.sends[intent.intent_id]:
            return SendResult(provider_ref=f"SM{intent.intent_id[:32]}", status="queued")
        return None

    def worker(self) -> Worker:
        parts = WorkerParts(
            channel=Channel.SMS,
            adapter=CallbackChannel(Channel.SMS, self.send, self.lookup),
            ledger=self.ledger,
            clock=SystemClock(),
            broker=self.broker,
            limiter=self.limiter,
            middleware=(self.counter,),
        )
        worker = build_worker(self.settings, parts, declare=False)
        worker.fault_backoff_max_s = 0.5  # keep the probes quick; production waits up to 30 s
        return worker

    def publish(self, intents: Sequence[ContactIntent]) -> None:
        self.server.publisher().publish_many(
            OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(i), {}) for i in intents
        )

    def depth(self, queue: str) -> int:
        return self.server.queue_depth(queue)

    def delayed(self) -> int:
        return sum(self.depth(delay_exchange(step)) for step in DELAY_STEPS_S)

    def dead(self) -> list[Delivery]:
        publisher = self.server.publisher()
        out = []
        while (d := publisher.get(dead_queue(Channel.SMS))) is not None:
            out.append(d)
        return out


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.inner.close()


async def eventually(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Return once ``predicate()`` holds, polling; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.02)  # poll interval of the condition, not a synchronisation


@pytest.mark.parametrize("store", ["ledger", "limiter"])
async def test_an_outage_pauses_consuming_dead_letters_nothing_and_sends_each_intent_once(
    rig: Rig, store: str
) -> None:
    flaky = rig.ledger if store == "ledger" else rig.limiter
    intents = [fresh() for _ in range(12)]

    def outage_after_four(intent: ContactIntent, attempt: int) -> None:
        if sum(rig.sends.values()) == 4:
            flaky.down = True  # mid-run, with sends in flight (their records may fail too)

    rig.on_send = outage_after_four
    rig.publish(intents)
    worker = rig.worker()
    task = asyncio.create_task(worker.run())
    try:
        # Before the fix each message was requeued at once and the queue's delivery limit
        # dead-lettered it (as `delivery_limit`) within milliseconds.
        dead = dead_queue(Channel.SMS)
        await eventually(lambda: (flaky.down and not worker.ready.is_set()) or rig.depth(dead) > 0)
        assert rig.depth(dead_queue(Channel.SMS)) == 0
        assert worker.paused_reason is not None
        assert ("database" if store == "ledger" else "rate limiter") in worker.paused_reason

        # While the store is down nothing is consumed: every message not yet sent waits in
        # the work queue (handed back through a delay queue, never requeued) with no consumer.
        def all_waiting() -> bool:
            unsettled = len(intents) - rig.counter.counts["sent"]
            return rig.delayed() == 0 and rig.depth(work_queue(Channel.SMS)) == unsettled

        await eventually(all_waiting)
        assert rig.server.consumer_count(work_queue(Channel.SMS)) == 0
        assert rig.broker.requeues == 0

        flaky.down = False
        await rig.counter.wait_until(
            lambda: all(rig.inner.get_state(i.intent_id) is IntentState.SENT for i in intents),
            timeout_s=30,
        )
        await eventually(worker.ready.is_set)
        assert worker.paused_reason is None
    finally:
        worker.stop()
        assert await task == 0
    assert set(rig.sends) == {i.intent_id for i in intents}
    assert set(rig.sends.values()) == {1}  # exactly once, including the ones in flight
    assert rig.dead() == []
    assert rig.broker.requeues == 0


async def test_a_refused_publish_holds_the_message_and_never_requeues_it(rig: Rig) -> None:
    """A retry needs the delay queue; while the broker refuses publishes the message is kept
    in hand (not requeued, not dead-lettered) and goes out once the broker takes it."""
    intent = fresh()

    async def fails_while_the_broker_refuses(candidate: ContactIntent, attempt: int) -> SendResult:
        if attempt == 1:
            rig.broker.down = True  # the retry's delay publish will be refused
        if rig.broker.down:
            raise TransientChannelError("provider 503", provider_code="503")
        return await rig.send(candidate, attempt)

    rig.publish([intent])
    parts = WorkerParts(
        channel=Channel.SMS,
        adapter=CallbackChannel(Channel.SMS, fails_while_the_broker_refuses, rig.lookup),
        ledger=rig.ledger,
        clock=SystemClock(),
        broker=rig.broker,
        middleware=(rig.counter,),
    )
    worker = build_worker(rig.settings, parts, declare=False)
    worker.fault_backoff_max_s = 0.5
    task = asyncio.create_task(worker.run())
    try:
        await rig.counter.wait_until(lambda: rig.counter.errors >= 2, timeout_s=10)
        assert rig.broker.requeues == 0  # before the fix: rejected with requeue each time
        assert worker.paused_reason is not None
        assert "broker" in worker.paused_reason
        rig.broker.down = False
        await rig.counter.wait_until(lambda: rig.counter.counts["sent"] == 1, timeout_s=30)
    finally:
        worker.stop()
        assert await task == 0
    assert rig.sends == Counter({intent.intent_id: 1})
    assert rig.broker.requeues == 0
    assert rig.dead() == []


async def test_a_message_the_ledger_always_refuses_dies_with_the_real_cause(rig: Rig) -> None:
    """The database answers (its probe passes) but one message's writes always fail: that is
    the message, not the infrastructure. It is dead-lettered by the worker with the ledger's
    error, not by the queue's delivery limit; the others are sent."""
    poison, good = fresh(), fresh()
    rig.ledger.poison.add(poison.intent_id)
    rig.publish([poison, good])
    worker = rig.worker()
    task = asyncio.create_task(worker.run())
    try:
        await rig.counter.wait_until(
            lambda: rig.counter.counts["sent"] == 1 and rig.counter.counts["dead"] == 1,
            timeout_s=30,
        )
    finally:
        worker.stop()
        assert await task == 0
    assert worker.paused_reason is None
    [dead] = rig.dead()
    assert decode_intent(dead.body) == poison  # the original body, untouched
    assert dead.headers[h.ERROR_CLASS] == "LedgerError"
    assert dead.headers[h.REASON] == "processing failed: LedgerError"
    assert "value too long" in dead.headers[h.ERROR_DETAIL]
    assert "x-death" not in dead.headers  # the worker's dead letter, not the queue's limit
    assert rig.sends == Counter({good.intent_id: 1})


async def test_dead_letters_of_one_cause_share_their_reason_and_keep_their_own_detail(
    rig: Rig,
) -> None:
    """The ledger's error text names the intent, so it differs per message; the reason must
    not, or `dunning dlq list` shows one group per message instead of one per cause."""
    first, second = fresh(), fresh()
    rig.ledger.poison.update({first.intent_id, second.intent_id})
    rig.publish([first, second])
    worker = rig.worker()
    task = asyncio.create_task(worker.run())
    try:
        await rig.counter.wait_until(lambda: rig.counter.counts["dead"] == 2, timeout_s=30)
    finally:
        worker.stop()
        assert await task == 0
    letters = {decode_intent(d.body).intent_id: d.headers for d in rig.dead()}
    assert {headers[h.REASON] for headers in letters.values()} == {"processing failed: LedgerError"}
    for intent_id, headers in letters.items():
        assert intent_id in headers[h.ERROR_DETAIL]
        assert intent_id not in headers[h.REASON]
