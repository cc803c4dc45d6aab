"""Worker metrics and the /metrics, /healthz, /readyz endpoint, on the memory broker."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from dunning.broker import reset_memory_server
from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, dead_queue
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import Clock, ManualClock, SystemClock
from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.metrics.prometheus import (
    CountingLimiter,
    DepthProbe,
    MetricsServer,
    WorkerMetrics,
)
from dunning.workers.metrics.wiring import database_check, instrument, serve_metrics
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.ratelimit.limiter import LocalRateLimiter
from dunning.workers.ratelimit.redis import RedisRateLimiter
from dunning.workers.runtime import Worker
from tests.factories import T0, make_intent


def fresh(phone: str = "+8613800138000", now: datetime | None = None) -> ContactIntent:
    now = now or datetime.now(UTC)  # at call time: the suite may run minutes after loading
    intent = make_intent(
        Channel.SMS, created_at=now - timedelta(minutes=2), expires_at=now + timedelta(hours=1)
    )
    return dataclasses.replace(intent, recipient=dataclasses.replace(intent.recipient, phone=phone))


Parsed = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Parsed:
    out: Parsed = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed: Parsed, name: str, **labels: str) -> float:
    return parsed[(name, frozenset({"channel": "sms", **labels}.items()))]


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.server: MemoryBroker = reset_memory_server()
        self.server.declare(build_topology())
        self.ledger = Ledger.open(f"sqlite:///{tmp / 'ledger.db'}")
        self.counter = OutcomeCounter()
        self.settings = Settings(broker_url="memory://", retry_delays_s=(1,), max_attempts=2)

    async def send(self, intent: ContactIntent, attempt: int) -> SendResult:
        if intent.recipient.phone == "+8613800000000":
            raise PermanentChannelError("invalid number", provider_code="21211")
        return SendResult(provider_ref=f"SM{intent.intent_id[:30]}", status="queued")

    def publish(self, *bodies: bytes) -> None:
        self.server.publisher().publish_many(
            OutboundMessage(INTENTS_EXCHANGE, "sms", body, {}) for body in bodies
        )

    def worker(self, clock: Clock | None = None) -> tuple[Worker, WorkerMetrics]:
        parts = WorkerParts(
            channel=Channel.SMS,
            adapter=CallbackChannel(Channel.SMS, self.send),
            ledger=self.ledger,
            clock=clock or SystemClock(),
            broker=self.server.client(),
            middleware=(self.counter,),
        )
        metrics = instrument(parts)
        return build_worker(self.settings, parts, declare=False), metrics


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.ledger.close()


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def test_outcomes_latency_and_dlq_depth_are_exported(rig: Rig) -> None:
    worker, metrics = rig.worker()
    server = await serve_metrics(
        metrics, worker, rig.ledger, rig.settings, host="127.0.0.1", port=0
    )
    assert server.port is not None
    task = asyncio.create_task(worker.run())
    try:
        rig.publish(
            *(encode_intent(fresh()) for _ in range(3)),
            encode_intent(fresh("+8613800000000")),
            b"{not json",
        )
        await rig.counter.wait_until(lambda: sum(rig.counter.counts.values()) == 5, 10)
        status, text = await get(server.port, "/metrics")
    finally:
        worker.stop()
        assert await task == 0
        await server.stop()
    assert status == 200
    parsed = samples(text)
    assert value(parsed, "dunning_messages_received_total") == 5
    assert value(parsed, "dunning_messages_outcome_total", outcome="sent") == 3
    assert value(parsed, "dunning_messages_outcome_total", outcome="dead") == 2
    assert value(parsed, "dunning_in_flight") == 0
    assert value(parsed, "dunning_provider_seconds_count", result="ok") == 3
    assert value(parsed, "dunning_provider_seconds_count", result="error") == 1
    assert value(parsed, "dunning_processing_seconds_count") == 5
    # The intents were created two minutes ago: every send lands in the 300 s bucket, not 60 s.
    assert value(parsed, "dunning_end_to_end_seconds_bucket", le="60.0") == 0
    assert value(parsed, "dunning_end_to_end_seconds_bucket", le="300.0") == 3
    assert value(parsed, "dunning_dlq_depth") == 2
    assert value(parsed, "dunning_broker_reconnects") == 0


async def test_end_to_end_latency_is_read_on_the_workers_clock(rig: Rig) -> None:
    # A drill pinned with DUNNING_NOW stamps intents by the pinned clock, days away from the
    # wall clock: their age must be read on the worker's clock too.
    clock = ManualClock(T0)
    worker, metrics = rig.worker(clock)
    task = asyncio.create_task(worker.run())
    try:
        rig.publish(*(encode_intent(fresh(now=T0)) for _ in range(2)))
        await rig.counter.wait_until(lambda: sum(rig.counter.counts.values()) == 2, 10)
    finally:
        worker.stop()
        assert await task == 0
    parsed = samples(metrics.exposition().decode())
    assert value(parsed, "dunning_messages_outcome_total", outcome="sent") == 2
    # Created two minutes before the worker's now: the 300 s bucket, not the 60 s one.
    assert value(parsed, "dunning_end_to_end_seconds_bucket", le="60.0") == 0
    assert value(parsed, "dunning_end_to_end_seconds_bucket", le="300.0") == 2


async def test_readyz_follows_the_worker_and_the_database(rig: Rig, tmp_path: Path) -> None:
    worker, metrics = rig.worker()
    server = await serve_metrics(
        metrics, worker, rig.ledger, rig.settings, host="127.0.0.1", port=0
    )
    assert server.port is not None
    try:
        status, text = await get(server.port, "/readyz")
        assert status == 503
        assert text.splitlines() == ["broker: not connected to the broker (reconnecting)"]
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(worker.ready.wait(), 5)
        assert await get(server.port, "/readyz") == (200, "ready\n")
        assert await get(server.port, "/healthz") == (200, "ok\n")
        parsed = samples((await get(server.port, "/metrics"))[1])
        assert value(parsed, "dunning_worker_ready") == 1
        worker.stop()
        assert await task == 0
    finally:
        await server.stop()


async def test_unreachable_database_fails_readiness_with_the_reason(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'ledger.db'}")
    metrics = WorkerMetrics(Channel.EMAIL)
    server = MetricsServer(metrics, {"database": database_check(Ledger(engine))})
    port = await server.start("127.0.0.1", 0)
    try:
        status, text = await get(port, "/readyz")
    finally:
        await server.stop()
        engine.dispose()
    assert status == 503
    assert text.startswith("database: database unreachable: OperationalError")


async def test_a_taken_port_is_a_config_error_naming_it_and_the_port_stays_free_of_us() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MetricsServer(WorkerMetrics(Channel.SMS), {})
        with pytest.raises(ConfigError) as caught:
            await server.start("127.0.0.1", port)
    assert str(caught.value).startswith(
        f"metrics port {port} on 127.0.0.1 is already in use by another process: "
    )
    assert "--metrics-port" in str(caught.value)
    assert server.port is None
    await server.stop()  # nothing was left running


async def test_a_check_that_hangs_fails_after_its_timeout() -> None:
    never = asyncio.Event()

    async def hangs() -> str | None:
        await never.wait()
        return None

    server = MetricsServer(WorkerMetrics(Channel.SMS), {"slow": hangs}, check_timeout_s=0.05)
    assert await server.failing_checks() == {"slow": "no answer within 0.05s"}


def test_depth_probe_caches_and_reports_failures_as_minus_one() -> None:
    calls: list[str] = []

    def depth(queue: str) -> int:
        calls.append(queue)
        if len(calls) > 1:
            raise OSError("connection refused")
        return 7

    probe = DepthProbe(dead_queue(Channel.SMS), depth, max_age_s=3600)
    assert (probe(), probe()) == (7, 7)
    assert calls == ["dunning.sms.dead"]
    expired = DepthProbe("q", depth, max_age_s=0)
    assert expired() == -1


async def test_counting_limiter_counts_only_real_waits() -> None:
    waits = iter([0.0, 0.25, 0.5])

    class Scripted:
        def __init__(self) -> None:
            self.paused: list[tuple[str, float]] = []

        async def acquire(self, *keys: str) -> float:
            return next(waits)

        def pause(self, key: str, seconds: float) -> None:
            self.paused.append((key, seconds))

    metrics = WorkerMetrics(Channel.SMS)
    inner = Scripted()
    limiter = CountingLimiter(inner, metrics)
    for _ in range(3):
        await limiter.acquire("sms:default")
    limiter.pause("sms:default", 2.0)
    parsed = samples(metrics.exposition().decode())
    assert value(parsed, "dunning_rate_limit_waits_total") == 2
    assert value(parsed, "dunning_rate_limit_wait_seconds_total") == 0.75
    assert inner.paused == [("sms:default", 2.0)]


@pytest.mark.parametrize("redis_url", [None, "redis://127.0.0.1:6399/0"])
async def test_metrics_wrap_the_rate_limiter_the_worker_builds(
    tmp_path: Path, redis_url: str | None
) -> None:
    """`dunning worker --metrics-port` instruments the parts before the worker is built: the
    pipeline must still get the limiter from [rate_limits] (Redis-backed when configured)."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.toml").write_text("[rate_limits.sms]\naccount_per_s = 2.0\n")
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")

    async def send(intent: ContactIntent, attempt: int) -> SendResult:
        return SendResult(provider_ref="SM" + "0" * 32, status="queued")

    parts = WorkerParts(
        channel=Channel.SMS,
        adapter=CallbackChannel(Channel.SMS, send),
        ledger=ledger,
        clock=SystemClock(),
        broker=MemoryBroker().client(),
    )
    instrument(parts)
    worker = build_worker(Settings(config_dir=config, redis_url=redis_url), parts, declare=False)
    try:
        limiter = worker.processor.limiter
        assert isinstance(limiter, CountingLimiter)
        expected = LocalRateLimiter if redis_url is None else RedisRateLimiter
        assert isinstance(limiter.inner, expected)
        assert ("rate_limiter" in worker.probes) is (redis_url is not None)
    finally:
        await worker.processor.aclose()
        ledger.close()
