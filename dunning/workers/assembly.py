"""Put a worker together from settings: broker, ledger, adapter, gate, limiter, middleware.

The CLI and the embedded demo both build workers here, so they run the same code path.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from dunning.broker import open_async_broker
from dunning.broker.base import AsyncBroker
from dunning.broker.topology import build_topology, work_queue
from dunning.channels.base import ChannelAdapter
from dunning.clock import Clock
from dunning.intents import Channel
from dunning.settings import Settings
from dunning.workers.headers import worker_identity
from dunning.workers.middleware import Middleware, OutcomeLog
from dunning.workers.pipeline import Gate, IntentProcessor, LedgerPort
from dunning.workers.ratelimit import RateLimiter, Unlimited
from dunning.workers.retries import RetryPolicy
from dunning.workers.runtime import Worker

__all__ = ["WorkerParts", "build_worker"]


@dataclass
class WorkerParts:
    """Everything a worker needs; tests and the demo pass their own parts."""

    channel: Channel
    adapter: ChannelAdapter
    ledger: LedgerPort
    clock: Clock
    gate: Gate | None = None
    broker: AsyncBroker | None = None
    limiter: RateLimiter | None = None
    middleware: Sequence[Middleware] = (OutcomeLog(),)


def build_worker(settings: Settings, parts: WorkerParts, *, declare: bool = True) -> Worker:
    broker = parts.broker or open_async_broker(settings.broker_url)
    limiter = parts.limiter or Unlimited()
    policy = RetryPolicy(delays_s=settings.retry_delays_s, max_attempts=settings.max_attempts)
    identity = worker_identity()

    def processor(b: AsyncBroker) -> IntentProcessor:
        return IntentProcessor(
            channel=parts.channel,
            adapter=parts.adapter,
            ledger=parts.ledger,
            broker=b,
            clock=parts.clock,
            gate=parts.gate,
            limiter=limiter,
            limit_key=f"{parts.channel.value}:default",
            policy=policy,
            worker_id=identity,
            reconcile_after_s=settings.reconcile_after_s,
            rng=random.Random(),
        )

    topology = build_topology(delivery_limit=settings.delivery_limit) if declare else None
    return Worker(
        queue=work_queue(parts.channel),
        broker=broker,
        processor_factory=processor,
        topology=topology,
        prefetch=settings.prefetch,
        max_in_flight=settings.max_in_flight,
        shutdown_grace_s=settings.shutdown_grace_s,
        middleware=parts.middleware,
    )
