"""Put a worker together from settings: broker, ledger, adapter, gate, limiter, middleware.

The CLI and the embedded demo both build workers here, so they run the same code path.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dunning.broker import open_async_broker
from dunning.broker.base import AsyncBroker
from dunning.broker.topology import build_topology, work_queue
from dunning.channels.base import ChannelAdapter
from dunning.clock import Clock
from dunning.errors import ConfigError
from dunning.intents import Channel, ContactIntent
from dunning.settings import Settings
from dunning.workers.headers import worker_identity
from dunning.workers.middleware import DEFAULT_MIDDLEWARE, Middleware
from dunning.workers.pipeline import Gate, IntentProcessor, LedgerPort
from dunning.workers.ratelimit import LocalRateLimiter, RateLimiter, Unlimited
from dunning.workers.ratelimit_config import ChannelLimits, load_channel_limits
from dunning.workers.retries import RetryPolicy
from dunning.workers.runtime import Worker

__all__ = ["WorkerParts", "build_limiter", "build_worker", "channel_limits"]


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


def build_worker(settings: Settings, parts: WorkerParts, *, declare: bool = True) -> Worker:
    broker = parts.broker or open_async_broker(settings.broker_url)
    _size_thread_pool(settings.max_in_flight)
    limits = channel_limits(settings, parts.channel)
    limiter = parts.limiter or build_limiter(settings, limits)
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
    )


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
        from dunning.workers.ratelimit_redis import RedisRateLimiter

        return RedisRateLimiter(settings.redis_url, limits.rate_for, burst=limits.burst)
    return LocalRateLimiter(limits.rate_for, burst=limits.burst)


def _sender_lookup(settings: Settings, channel: Channel) -> Callable[[ContactIntent], str | None]:
    """Intent -> the sender id its send goes out from (None when the channel has none)."""
    if channel not in (Channel.SMS, Channel.VOICE):
        return lambda _intent: None
    from dunning.channels.sender_config import load_twilio_config

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


def _size_thread_pool(max_in_flight: int) -> None:
    """Give the running loop one ledger thread per send in flight.

    Ledger calls run in the loop's default executor, which has ``cpu_count + 4`` threads: on a
    2-core box 6 of 20 in-flight sends could wait on the database at once, and the others
    queued behind them (measured: the worker spent most of its time with idle sends).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # built outside a loop (tools, tests): the loop that runs it keeps its default
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="ledger")
    )
