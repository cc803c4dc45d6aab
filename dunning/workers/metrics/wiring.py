"""Attach :mod:`dunning.workers.metrics` to a worker: wrap its parts, start the endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from dunning.broker import open_publisher
from dunning.broker.topology import dead_queue
from dunning.errors import LedgerError
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts
from dunning.workers.metrics.prometheus import (
    CountingLimiter,
    DepthProbe,
    MetricsServer,
    ReadinessCheck,
    TimedAdapter,
    WorkerMetrics,
)
from dunning.workers.runtime import Worker

__all__ = ["broker_check", "broker_depth", "database_check", "instrument", "serve_metrics"]


def instrument(parts: WorkerParts) -> WorkerMetrics:
    """Wrap ``parts`` (adapter, limiter, middleware) so they feed a new :class:`WorkerMetrics`.

    The limiter is wrapped where :func:`build_worker` has it (``observe_limiter``): the one
    ``parts`` names or, usually, the one built from ``[rate_limits]`` and ``DUNNING_REDIS_URL``.
    """
    metrics = WorkerMetrics(parts.channel, clock=parts.clock)
    parts.adapter = TimedAdapter(parts.adapter, metrics)
    parts.observe_limiter = lambda limiter: CountingLimiter(limiter, metrics)
    parts.middleware = (*parts.middleware, metrics)
    return metrics


def broker_depth(broker_url: str) -> Callable[[str], int]:
    """A blocking ``queue -> ready count`` over a short-lived publisher (one per sample)."""

    def depth(queue: str) -> int:
        publisher = open_publisher(broker_url)
        try:
            return publisher.queue_depth(queue)
        finally:
            publisher.close()

    return depth


class Pingable(Protocol):
    def ping(self) -> None:
        """Run ``SELECT 1``; raises LedgerError naming the fault."""
        ...


def database_check(ledger: Pingable) -> ReadinessCheck:
    """A readiness check that runs ``SELECT 1`` on the ledger database."""

    async def check() -> str | None:
        try:
            await asyncio.to_thread(ledger.ping)
        except LedgerError as exc:
            return f"database unreachable: {exc}"
        return None

    return check


def broker_check(worker: Worker) -> ReadinessCheck:
    """A readiness check that passes while ``worker`` is connected and consuming (not paused
    for an infrastructure fault)."""

    async def check() -> str | None:
        return worker.not_ready_reason()

    return check


async def serve_metrics(
    metrics: WorkerMetrics,
    worker: Worker,
    ledger: Pingable,
    settings: Settings,
    *,
    host: str,
    port: int,
) -> MetricsServer:
    """Start the /metrics, /healthz, /readyz endpoint for ``worker``; returns the server."""
    metrics.watch_worker(worker.ready.is_set, lambda: worker.reconnects)
    metrics.watch_dlq(DepthProbe(dead_queue(metrics.channel), broker_depth(settings.broker_url)))
    checks = {"broker": broker_check(worker), "database": database_check(ledger)}
    checks.update({name: probe for name, probe in worker.probes.items() if name not in checks})
    server = MetricsServer(metrics, checks)
    await server.start(host, port)
    return server
