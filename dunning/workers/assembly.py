"""Put a worker together from settings: broker, ledger, adapter, gate, limiter, middleware.

The CLI and the embedded demo both build workers here, so they run the same code path.

Ledger sizing: every ledger call runs in the loop's default executor, one thread per send in
flight plus the group-commit writer and one for housekeeping (readiness probe, reconcile sweep),
so :func:`ledger_threads` is ``max_in_flight + 2``; a worker's PostgreSQL pool is bounded by the
same number (a connection per thread, never more) and trimmed back to a few idle connections
after a burst. The arithmetic for a fleet is in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from dunning.broker import open_async_broker
from dunning.broker.base import AsyncBroker
from dunning.broker.topology import build_topology, work_queue
from dunning.channels.base import ChannelAdapter
from dunning.clock import Clock
from dunning.errors import ConfigError
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.engine import PoolBounds
from dunning.settings import Settings
from dunning.workers.headers import worker_identity
from dunning.workers.health import PingableStore, ReadinessCheck, ledger_check, limiter_check
from dunning.workers.middleware import DEFAULT_MIDDLEWARE, Middleware
from dunning.workers.pipeline import Gate, IntentProcessor, LedgerPort
from dunning.workers.ratelimit.config import ChannelLimits, load_channel_limits
from dunning.workers.ratelimit.limiter import LocalRateLimiter, RateLimiter, Unlimited
from dunning.workers.retries import RetryPolicy
from dunning.workers.runtime import Worker

__all__ = [
    "WorkerParts",
    "build_limiter",
    "build_worker",
    "channel_limits",
    "ledger_pool",
    "ledger_threads",
    "open_worker_ledger",
    "release_idle_connections",
]

log = structlog.get_logger(__name__)

#: Idle ledger connections a worker keeps between bursts, and how often it trims the rest.
KEEP_IDLE_CONNECTIONS = 2
IDLE_TRIM_EVERY_S = 30.0


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
    middleware: Sequence[Middleware] = DEFAULT_MIDDLEWARE
    #: Wraps the limiter the worker ends up with (``limiter``, or the one built from settings):
    #: metrics count its waits this way without replacing it.
    observe_limiter: Callable[[RateLimiter], RateLimiter] | None = None


def build_worker(settings: Settings, parts: WorkerParts, *, declare: bool = True) -> Worker:
    broker = parts.broker or open_async_broker(settings.broker_url)
    _size_thread_pool(ledger_threads(settings.max_in_flight))
    limits = channel_limits(settings, parts.channel)
    limiter = parts.limiter or build_limiter(settings, limits)
    probes: dict[str, ReadinessCheck] = {"database": ledger_check(parts.ledger)}
    if isinstance(limiter, PingableStore):
        probes["rate_limiter"] = limiter_check(limiter)
    if parts.observe_limiter is not None:
        limiter = parts.observe_limiter(limiter)
    sender_of = _sender_lookup(settings, parts.channel)
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
            limit_key=limits.account_key,
            limit_keys=lambda intent: limits.keys(intent, sender_of(intent)),
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
        probes=probes,
    )


def ledger_threads(max_in_flight: int) -> int:
    """Ledger threads (and at most as many connections) of one worker process."""
    return max_in_flight + 2


def ledger_pool(settings: Settings) -> PoolBounds:
    """The PostgreSQL pool bounds of one worker process (see docs/operations.md)."""
    return PoolBounds(ledger_threads(settings.max_in_flight), KEEP_IDLE_CONNECTIONS)


def open_worker_ledger(settings: Settings, channel: Channel) -> Ledger:
    """The ledger of a ``dunning worker CHANNEL`` process: pool bounded by its in-flight limit,
    connections named ``dunning-worker-<channel>`` in ``pg_stat_activity``."""
    return Ledger.open(
        settings.database_url,
        pool=ledger_pool(settings),
        application_name=f"dunning-worker-{channel.value}",
    )


def release_idle_connections(
    worker: Worker, ledger: Ledger, *, keep: int = KEEP_IDLE_CONNECTIONS,
    every_s: float = IDLE_TRIM_EVERY_S,
) -> None:  # fmt: skip
    """Have ``worker`` close the ledger connections left idle beyond ``keep`` every ``every_s``."""

    async def trim() -> None:
        closed = await asyncio.to_thread(ledger.release_idle, keep)
        if closed:
            log.info("ledger.idle_connections_closed", closed=closed, kept=keep)

    worker.add_periodic(trim, every_s)


def channel_limits(settings: Settings, channel: Channel) -> ChannelLimits:
    """The channel's ``[rate_limits.<channel>]``, keyed by its provider account."""
    account = {
        Channel.SMS: settings.twilio_account_sid,
        Channel.VOICE: settings.twilio_account_sid,
        Channel.EMAIL: f"{settings.smtp_host}:{settings.smtp_port}",
    }.get(channel, "default")
    return load_channel_limits(settings.config_dir, channel, account=account)


def build_limiter(settings: Settings, limits: ChannelLimits) -> RateLimiter:
    """Shared through Redis when ``DUNNING_REDIS_URL`` is set, in-process otherwise."""
    if not (limits.account_per_s or limits.sender_per_s or limits.senders_per_s) and (
        limits.recipient_per_s is None
    ):
        return Unlimited()
    if settings.redis_url:
        from dunning.workers.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(settings.redis_url, limits.rate_for, burst=limits.burst)
    return LocalRateLimiter(limits.rate_for, burst=limits.burst)


def _sender_lookup(settings: Settings, channel: Channel) -> Callable[[ContactIntent], str | None]:
    """Intent -> the sender id its send goes out from (None when the channel has none)."""
    if channel not in (Channel.SMS, Channel.VOICE):
        return lambda _intent: None
    from dunning.channels_toml import load_twilio_config

    try:
        config = load_twilio_config(settings.config_dir)
    except ConfigError:
        return lambda _intent: None  # the adapter reports the configuration fault per send

    def sender_of(intent: ContactIntent) -> str | None:
        try:
            sender = config.sender(channel.value, intent.jurisdiction)
        except ConfigError:
            return None  # the adapter dead-letters it as ConfigError
        return sender.messaging_service_sid or sender.from_number

    return sender_of


def _size_thread_pool(threads: int) -> None:
    """Give the running loop one ledger thread per send in flight (plus writer and probe).

    Ledger calls run in the loop's default executor, which has ``cpu_count + 4`` threads: on a
    2-core box 6 of 20 in-flight sends could wait on the database at once, and the others
    queued behind them (measured: the worker spent most of its time with idle sends). The
    executor never starts more than ``threads``, so the pool never needs more connections.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # built outside a loop (tools, tests): the loop that runs it keeps its default
    loop.set_default_executor(ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ledger"))
