"""Prometheus metrics for one worker process, and the HTTP endpoint that serves them.

:class:`WorkerMetrics` is a middleware (it sees every message's outcome); :class:`TimedAdapter`
and :class:`CountingLimiter` wrap the channel adapter and the rate limiter to measure provider
latency and rate-limit waits, which the middleware cannot see. :class:`MetricsServer` serves

    /metrics   Prometheus text format (every metric below, prefix ``dunning_``)
    /healthz   200 while the process's event loop answers (liveness)
    /readyz    200 when every readiness check passes (broker connected, database reachable),
               503 with one line per failing check otherwise

Each process has its own :class:`~prometheus_client.CollectorRegistry` (never the global one),
so tests and the embedded demo can run several workers in one process.
"""

from __future__ import annotations

import asyncio
import errno
import threading
import time
from collections import Counter as CounterOf
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from dunning.broker.base import Delivery
from dunning.channels.base import ChannelAdapter, ProviderLookup, SendResult
from dunning.clock import Clock, SystemClock
from dunning.errors import ConfigError, DecodeError
from dunning.intents import Channel, ContactIntent, decode_intent
from dunning.workers.health import ReadinessCheck, failing_checks
from dunning.workers.middleware import Middleware
from dunning.workers.pipeline import Outcome
from dunning.workers.ratelimit.limiter import RateLimiter

__all__ = [
    "CountingLimiter",
    "DepthProbe",
    "MetricsServer",
    "ReadinessCheck",
    "TimedAdapter",
    "WorkerMetrics",
]

log = structlog.get_logger(__name__)

_PROVIDER_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# End-to-end spans retries and contact-window waits: seconds up to days.
_E2E_BUCKETS_S = (1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)


class WorkerMetrics(Middleware):
    """Counters, gauges and histograms of one channel worker (labelled by ``channel``)."""

    def __init__(
        self,
        channel: Channel,
        registry: CollectorRegistry | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.channel = channel.value
        # The worker's clock: intents carry created_at by the evaluator's (maybe DUNNING_NOW) clock.
        self.clock = clock or SystemClock()
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._tally = _Tally()
        r = self.registry
        self.received = Counter(
            "dunning_messages_received", "Messages taken up by the worker", ["channel"], registry=r
        )
        self.outcomes = Counter(
            "dunning_messages_outcome",
            "Messages by outcome (sent, suppressed, deferred, delayed, retry, throttled, dead, "
            "expired, duplicate, in_doubt, error)",
            ["channel", "outcome"],
            registry=r,
        )
        self.gate_decisions = Counter(
            "dunning_gate_decisions",
            "Compliance gate decisions that held a message back, by rule id and outcome",
            ["channel", "rule_id", "outcome"],
            registry=r,
        )
        self.processing_s = Histogram(
            "dunning_processing_seconds",
            "Time from taking a message up to its outcome (before the ack)",
            ["channel"],
            registry=r,
        )
        self.end_to_end_s = Histogram(
            "dunning_end_to_end_seconds",
            "Time from the intent's created_at (evaluator) to its successful send",
            ["channel"],
            buckets=_E2E_BUCKETS_S,
            registry=r,
        )
        self.provider_s = Histogram(
            "dunning_provider_seconds",
            "Provider call latency (channel adapter send), by result",
            ["channel", "result"],
            buckets=_PROVIDER_BUCKETS_S,
            registry=r,
        )
        self.in_flight = Gauge(
            "dunning_in_flight", "Messages being processed right now", ["channel"], registry=r
        )
        self.rate_limit_waits = Counter(
            "dunning_rate_limit_waits",
            "Sends that had to wait for the rate limiter",
            ["channel"],
            registry=r,
        )
        self.rate_limit_wait_s = Counter(
            "dunning_rate_limit_wait_seconds",
            "Seconds spent waiting for the rate limiter",
            ["channel"],
            registry=r,
        )
        self.reconnects = Gauge(
            "dunning_broker_reconnects",
            "Broker connection losses this process recovered from since it started",
            ["channel"],
            registry=r,
        )
        self.ready = Gauge(
            "dunning_worker_ready", "1 while connected and consuming", ["channel"], registry=r
        )
        self.dlq_depth = Gauge(
            "dunning_dlq_depth",
            "Messages in this channel's dead-letter queue (sampled at scrape time)",
            ["channel"],
            registry=r,
        )
        # Children are created up front so every series exists (as 0) from the first scrape.
        self.received.labels(self.channel)
        self.in_flight.labels(self.channel)
        for kind in ("sent", "suppressed", "deferred", "retry", "dead", "expired", "error"):
            self.outcomes.labels(self.channel, kind)

    # The hot path only adds to plain Python values on the event loop (prometheus_client takes
    # a lock per update); flush() moves them into the collectors, on the loop, before a scrape
    # and whenever a backlog of observations builds up.

    def before_process(self, delivery: Delivery) -> None:
        self._tally.received += 1
        self._tally.in_flight += 1

    def after_process(self, delivery: Delivery, outcome: Outcome, elapsed_s: float) -> None:
        tally = self._tally
        tally.in_flight -= 1
        tally.outcomes[outcome.kind] += 1
        tally.processing_s.append(elapsed_s)
        if outcome.rule_id:
            tally.gated[(outcome.rule_id, outcome.kind)] += 1
        if outcome.kind == "sent":
            created = outcome.created_at or _created_at(delivery.body)
            if created is not None:
                age_s = (self.clock.now() - created).total_seconds()
                tally.end_to_end_s.append(max(age_s, 0.0))
        if len(tally.processing_s) >= _FLUSH_AFTER:
            self.flush()

    def on_error(self, delivery: Delivery, error: BaseException) -> None:
        self._tally.in_flight -= 1
        self._tally.outcomes["error"] += 1

    def observe_provider(self, result: str, seconds: float) -> None:
        self._tally.provider_s.append((result, seconds))

    def flush(self) -> None:
        """Move what the hot path counted into the collectors (call on the event loop)."""
        tally, self._tally = self._tally, _Tally()
        self._tally.in_flight = tally.in_flight
        channel = self.channel
        if tally.received:
            self.received.labels(channel).inc(tally.received)
        self.in_flight.labels(channel).set(tally.in_flight)
        for kind, count in tally.outcomes.items():
            self.outcomes.labels(channel, kind).inc(count)
        for (rule_id, kind), count in tally.gated.items():
            self.gate_decisions.labels(channel, rule_id, kind).inc(count)
        for histogram, values in (
            (self.processing_s, tally.processing_s),
            (self.end_to_end_s, tally.end_to_end_s),
        ):
            child = histogram.labels(channel)
            for value in values:
                child.observe(value)
        for result, seconds in tally.provider_s:
            self.provider_s.labels(channel, result).observe(seconds)

    def watch_worker(self, ready: Callable[[], bool], reconnects: Callable[[], int]) -> None:
        """Read readiness and the reconnect count from the worker at scrape time."""
        self.ready.labels(self.channel).set_function(lambda: 1.0 if ready() else 0.0)
        self.reconnects.labels(self.channel).set_function(lambda: float(reconnects()))

    def watch_dlq(self, probe: DepthProbe) -> None:
        """Sample the dead-letter queue depth through ``probe`` at scrape time."""
        self.dlq_depth.labels(self.channel).set_function(lambda: float(probe()))

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (after a flush: call on the loop's thread)."""
        self.flush()
        return generate_latest(self.registry)


#: Observations kept on the hot path before they are moved into the collectors.
_FLUSH_AFTER = 512


@dataclass
class _Tally:
    """What the hot path counted since the last flush (touched on the event loop only)."""

    received: int = 0
    in_flight: int = 0
    outcomes: CounterOf[str] = field(default_factory=CounterOf)
    gated: CounterOf[tuple[str, str]] = field(default_factory=CounterOf)
    processing_s: list[float] = field(default_factory=list)
    end_to_end_s: list[float] = field(default_factory=list)
    provider_s: list[tuple[str, float]] = field(default_factory=list)


def _created_at(body: bytes) -> datetime | None:
    try:
        return decode_intent(body).created_at
    except DecodeError:
        return None


class TimedAdapter:
    """A :class:`ChannelAdapter` that times each provider call into ``metrics``."""

    def __init__(self, inner: ChannelAdapter, metrics: WorkerMetrics) -> None:
        self.channel = inner.channel
        self._inner = inner
        self._metrics = metrics

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        started = time.monotonic()
        result = "error"
        try:
            sent = await self._inner.send(intent, attempt=attempt)
            result = "ok"
            return sent
        finally:
            self._metrics.observe_provider(result, time.monotonic() - started)

    async def find_sent(self, intent: ContactIntent, *, since: datetime) -> SendResult | None:
        """The wrapped adapter's provider lookup, when it has one."""
        if isinstance(self._inner, ProviderLookup):
            return await self._inner.find_sent(intent, since=since)
        return None

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingLimiter:
    """A :class:`RateLimiter` that counts the waits of the limiter it wraps (``inner``)."""

    def __init__(self, inner: RateLimiter, metrics: WorkerMetrics) -> None:
        self.inner = inner
        self._metrics = metrics

    async def acquire(self, *keys: str) -> float:
        waited_s = await self.inner.acquire(*keys)
        if waited_s > 0:
            self._metrics.rate_limit_waits.labels(self._metrics.channel).inc()
            self._metrics.rate_limit_wait_s.labels(self._metrics.channel).inc(waited_s)
        return waited_s

    def pause(self, key: str, seconds: float) -> None:
        self.inner.pause(key, seconds)

    async def aclose(self) -> None:
        """Close the wrapped limiter's store connection, when it has one."""
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


class DepthProbe:
    """A cached ``queue_depth`` sample: at most one broker round trip per ``max_age_s``.

    ``depth`` is any blocking function of the queue name (``Publisher.queue_depth`` on a
    short-lived publisher); failures give -1 so a scrape never fails because the broker did.
    """

    def __init__(self, queue: str, depth: Callable[[str], int], max_age_s: float = 15.0) -> None:
        self.queue = queue
        self._depth = depth
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._value = -1
        self._taken_at: float | None = None

    def __call__(self) -> int:
        with self._lock:
            now = time.monotonic()
            if self._taken_at is None or now - self._taken_at >= self._max_age_s:
                try:
                    self._value = self._depth(self.queue)
                except Exception as exc:  # noqa: BLE001  a metric sample must not fail the scrape
                    log.warning("queue depth sample failed", queue=self.queue, error=str(exc))
                    self._value = -1
                self._taken_at = now
            return self._value


class MetricsServer:
    """aiohttp server for /metrics, /healthz and /readyz on the worker's event loop."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        checks: Mapping[str, ReadinessCheck],
        *,
        check_timeout_s: float = 5.0,
    ) -> None:
        self.metrics = metrics
        self.checks = dict(checks)
        self.check_timeout_s = check_timeout_s
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port.

        Raises ConfigError naming the port when it cannot be bound (taken, privileged, or an
        address this host does not have), so a worker stops before it consumes anything.
        """
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            why = (
                "is already in use by another process"
                if exc.errno == errno.EADDRINUSE
                else f"cannot be bound ({exc.strerror or exc})"
            )
            raise ConfigError(
                f"metrics port {port} on {host} {why}: choose a free port with --metrics-port "
                f"(or DUNNING_METRICS_PORT), or 0 to let the system pick one"
            ) from exc
        self._runner = runner
        server = site._server  # aiohttp keeps the asyncio server private; needed for port 0
        sockets = getattr(server, "sockets", None) or ()
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        log.info("metrics.listening", host=host, port=self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _: web.Request) -> web.Response:
        # Scrape-time gauges may do blocking I/O (the DLQ depth probe): keep it off the loop;
        # the hot path's counts are moved into the collectors here, on the loop.
        self.metrics.flush()
        body = await asyncio.to_thread(generate_latest, self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        failures = await self.failing_checks()
        if not failures:
            return web.Response(text="ready\n")
        text = "".join(f"{name}: {reason}\n" for name, reason in failures.items())
        return web.Response(status=503, text=text)

    async def failing_checks(self) -> dict[str, str]:
        """Run every readiness check; returns the failing ones with their reasons."""
        return await failing_checks(self.checks, timeout_s=self.check_timeout_s)
