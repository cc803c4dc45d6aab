"""A worker on real RabbitMQ and PostgreSQL while PostgreSQL is unreachable for a while.

The worker reaches PostgreSQL through a TCP proxy the test stops and starts again (the
machine's PostgreSQL is never touched). While the database is away the worker must stop
consuming and dead-letter nothing; afterwards every intent is sent exactly once. Its pool
(connections named by ``application_name`` in ``pg_stat_activity``) and its threads stay within
the bounds docs/operations.md documents, and the connections a burst opened are let go.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, dead_queue, work_queue
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import SystemClock
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.records import ContactHistory, GateDecision, IntentState
from dunning.settings import Settings
from dunning.workers.assembly import (
    KEEP_IDLE_CONNECTIONS,
    WorkerParts,
    build_worker,
    ledger_threads,
    open_worker_ledger,
    release_idle_connections,
)
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.runtime import Worker
from tests.factories import make_intent
from tests.integration.tcp_proxy import TcpProxy
from tests.services import (
    POSTGRES_URL,
    postgres_schema,
    rabbitmq_vhost_url,
    require,
    reset_rabbitmq_topology,
)

pytestmark = pytest.mark.integration

DELIVERY_LIMIT = 5
MAX_IN_FLIGHT = 8


def fresh(count: int) -> list[ContactIntent]:
    now = datetime.now(UTC)
    return [
        make_intent(
            Channel.SMS, created_at=now - timedelta(minutes=1), expires_at=now + timedelta(hours=1)
        )
        for _ in range(count)
    ]


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], timeout_s: float = 60
) -> None:
    """Return once ``predicate()`` holds (it may be a coroutine function), polling."""
    deadline = time.monotonic() + timeout_s
    while not await _value(predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.1)  # poll interval of the condition, not a synchronisation


async def _value(result: bool | Awaitable[bool]) -> bool:
    return await result if inspect.isawaitable(result) else result


@dataclass
class Rig:
    broker_url: str
    schema_url: str
    app_name: str
    proxy: TcpProxy
    ledger: Ledger
    reader: Ledger
    counter: OutcomeCounter = field(default_factory=OutcomeCounter)
    sends: Counter[str] = field(default_factory=Counter)
    on_send: Callable[[], Awaitable[None]] | None = None

    async def send(self, intent: ContactIntent, attempt: int) -> SendResult:
        self.sends[intent.intent_id] += 1
        if self.on_send is not None:
            await self.on_send()
        return SendResult(provider_ref=f"SM{intent.intent_id[:32]}", status="queued")

    async def lookup(self, intent: ContactIntent, since: datetime) -> SendResult | None:
        """The provider's record: every send this rig accepted."""
        if self.sends[intent.intent_id]:
            return SendResult(provider_ref=f"SM{intent.intent_id[:32]}", status="queued")
        return None

    def worker(self, settings: Settings, gate_delay_s: float = 0.0) -> Worker:
        def slow_gate(
            intent: ContactIntent, history: ContactHistory, now: datetime
        ) -> GateDecision:
            # Inside the claim transaction: holds its connection, as a busy database would.
            time.sleep(gate_delay_s)
            return GateDecision.allow()

        parts = WorkerParts(
            channel=Channel.SMS,
            adapter=CallbackChannel(Channel.SMS, self.send, self.lookup),
            ledger=self.ledger,
            clock=SystemClock(),
            gate=slow_gate if gate_delay_s else None,
            middleware=(self.counter,),
        )
        worker = build_worker(settings, parts, declare=False)
        worker.fault_backoff_max_s = 1.0
        release_idle_connections(worker, self.ledger, every_s=1.0)
        return worker

    async def publish(self, intents: list[ContactIntent]) -> None:
        def run() -> None:
            publisher = RabbitPublisher(self.broker_url)
            try:
                publisher.publish_many(
                    OutboundMessage(
                        INTENTS_EXCHANGE, "sms", encode_intent(i), {}, message_id=i.intent_id
                    )
                    for i in intents
                )
            finally:
                publisher.close()

        await asyncio.to_thread(run)

    async def queue_stats(self, queue: str) -> tuple[int, int]:
        def read() -> tuple[int, int]:
            publisher = RabbitPublisher(self.broker_url)
            try:
                return publisher.queue_stats(queue)
            finally:
                publisher.close()

        return await asyncio.to_thread(read)

    async def all_sent(self, intents: list[ContactIntent]) -> bool:
        def read() -> bool:
            return all(self.reader.get_state(i.intent_id) is IntentState.SENT for i in intents)

        return await asyncio.to_thread(read)


def _settings(broker_url: str, database_url: str) -> Settings:
    return Settings(
        broker_url=broker_url, database_url=database_url, max_in_flight=MAX_IN_FLIGHT,
        prefetch=20, delivery_limit=DELIVERY_LIMIT, reconcile_after_s=2, shutdown_grace_s=5,
    )  # fmt: skip


@asynccontextmanager
async def rig(name: str) -> AsyncIterator[tuple[Rig, Settings]]:
    require("rabbitmq")
    require("postgres")
    broker_url = rabbitmq_vhost_url(f"dunning-{name}")

    def prepare() -> None:
        reset_rabbitmq_topology(broker_url)
        admin = RabbitPublisher(broker_url)
        admin.declare(build_topology(delivery_limit=DELIVERY_LIMIT))
        admin.close()

    await asyncio.to_thread(prepare)
    with postgres_schema() as schema_url:
        reader = await asyncio.to_thread(Ledger.open, schema_url)  # migrates, not proxied
        proxy = TcpProxy("127.0.0.1", 5432)
        await proxy.start()
        app_name = f"dunning-test-{uuid.uuid4().hex[:10]}"
        proxied = schema_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}", 1)
        settings = _settings(broker_url, f"{proxied}&application_name={app_name}")
        ledger = await asyncio.to_thread(open_worker_ledger, settings, Channel.SMS)
        try:
            yield Rig(broker_url, schema_url, app_name, proxy, ledger, reader), settings
        finally:
            ledger.close()
            reader.close()
            await proxy.stop()


async def test_a_database_outage_pauses_consuming_and_every_intent_is_sent_once() -> None:
    async with rig("db-outage") as (r, settings):
        intents = fresh(40)

        async def outage_after_ten() -> None:
            if sum(r.sends.values()) == 10:
                await r.proxy.stop()  # this send's record cannot be written any more

        r.on_send = outage_after_ten
        await r.publish(intents)
        worker = r.worker(settings)
        task = asyncio.create_task(worker.run())
        try:
            dead = dead_queue(Channel.SMS)

            async def paused_or_dead() -> bool:
                return worker.paused_reason is not None or (await r.queue_stats(dead))[0] > 0

            await eventually(paused_or_dead)
            assert await r.queue_stats(dead) == (0, 0)
            assert worker.paused_reason is not None
            assert worker.paused_reason.startswith("database: database unreachable")

            # Paused: no consumer, and every message not yet sent is back in the work queue.
            async def all_waiting() -> bool:
                stats = await r.queue_stats(work_queue(Channel.SMS))
                return stats == (len(intents) - r.counter.counts["sent"], 0)

            await eventually(all_waiting)
            assert worker.paused_reason is not None  # still down: nothing was consumed

            await r.proxy.start()
            await eventually(lambda: r.all_sent(intents))
            await eventually(worker.ready.is_set)
        finally:
            worker.stop()
            assert await task == 0
        assert set(r.sends) == {i.intent_id for i in intents}
        assert set(r.sends.values()) == {1}  # exactly once, the one in flight included
        assert await r.queue_stats(dead) == (0, 0)
        assert await r.queue_stats(work_queue(Channel.SMS)) == (0, 0)


class Sampler:
    """Samples, in a thread of its own, the worker's PostgreSQL connections (by application
    name) and this process's threads; keeps the largest of each."""

    def __init__(self, app_name: str) -> None:
        self.app_name = app_name
        self.engine = create_engine(POSTGRES_URL)
        self.max_connections = 0
        self.max_threads = 0
        self.last_connections = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def connections(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
                    {"a": self.app_name},
                ).scalar_one()
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last_connections = self.connections()
            self.max_connections = max(self.max_connections, self.last_connections)
            self.max_threads = max(self.max_threads, threading.active_count())
            self._stop.wait(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.engine.dispose()


async def test_after_database_outages_connections_and_threads_stay_within_bounds(
    tmp_path: Path,
) -> None:
    bound = ledger_threads(MAX_IN_FLIGHT)  # docs/operations.md: max_in_flight + 2 per worker
    async with rig("db-pool") as (r, settings):
        intents = fresh(120)
        outages = [30, 70]  # sends after which PostgreSQL goes away

        async def outage() -> None:
            if outages and sum(r.sends.values()) >= outages[0]:
                outages.pop(0)
                await r.proxy.stop()

        r.on_send = outage
        await r.publish(intents)
        with Sampler(r.app_name) as sampler:
            threads_before = threading.active_count()
            worker = r.worker(settings, gate_delay_s=0.05)  # claims overlap: a real burst
            task = asyncio.create_task(worker.run())

            async def heal() -> None:
                """PostgreSQL comes back once the worker has paused for its absence."""
                while True:
                    if not r.proxy.running and worker.paused_reason is not None:
                        await r.proxy.start()
                    await asyncio.sleep(0.1)  # poll interval of the condition

            healer = asyncio.create_task(heal())
            try:
                await eventually(lambda: r.all_sent(intents), timeout_s=120)
                # The catch-up burst is over: the idle connections beyond the few kept go.
                await eventually(
                    lambda: sampler.last_connections <= KEEP_IDLE_CONNECTIONS, timeout_s=30
                )
                ledger_threads_seen = sum(
                    1 for t in threading.enumerate() if t.name.startswith("ledger")
                )
            finally:
                healer.cancel()
                worker.stop()
                assert await task == 0
        assert outages == []
        assert 2 < sampler.max_connections <= bound  # a burst happened, and stayed bounded
        assert ledger_threads_seen <= bound
        assert sampler.max_threads <= threads_before + bound
        assert set(r.sends.values()) == {1}
        assert await r.queue_stats(dead_queue(Channel.SMS)) == (0, 0)
