"""Rate limits a worker waits on before each send: in-process token buckets by key.

A wait here never consumes a retry and never nacks: the message stays in hand. A provider 429
pauses the whole key (``pause``), so every send on that provider account waits.
The interface is the :class:`RateLimiter` protocol; a Redis-backed limiter shares it across
processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["LocalRateLimiter", "RateLimiter", "Unlimited"]


class RateLimiter(Protocol):
    async def acquire(self, key: str) -> float:
        """Wait until one send on ``key`` is allowed; returns the seconds waited."""
        ...

    def pause(self, key: str, seconds: float) -> None:
        """Hold every send on ``key`` for ``seconds`` (a provider said slow down)."""
        ...


class Unlimited:
    async def acquire(self, key: str) -> float:
        return 0.0

    def pause(self, key: str, seconds: float) -> None:
        return None


@dataclass
class _Bucket:
    rate_per_s: float
    burst: float
    tokens: float
    updated: float
    paused_until: float = 0.0


@dataclass
class LocalRateLimiter:
    """Token buckets per key for one process; keys without a configured rate are unlimited."""

    rates_per_s: Mapping[str, float]
    burst: float = 1.0
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _bucket(self, key: str) -> _Bucket | None:
        bucket = self._buckets.get(key)
        rate = self.rates_per_s.get(key)
        if bucket is None and rate is not None:
            bucket = _Bucket(rate, self.burst, self.burst, time.monotonic())
            self._buckets[key] = bucket
        return bucket

    async def acquire(self, key: str) -> float:
        started = time.monotonic()
        async with self._lock:  # one waiter at a time per process keeps the order fair
            bucket = self._bucket(key)
            if bucket is None:
                return 0.0
            while True:
                now = time.monotonic()
                if now < bucket.paused_until:
                    await asyncio.sleep(bucket.paused_until - now)
                    continue
                if bucket.rate_per_s == float("inf"):
                    return time.monotonic() - started
                bucket.tokens = min(
                    bucket.burst, bucket.tokens + (now - bucket.updated) * bucket.rate_per_s
                )
                bucket.updated = now
                if bucket.tokens >= 1:
                    bucket.tokens -= 1
                    return time.monotonic() - started
                await asyncio.sleep((1 - bucket.tokens) / bucket.rate_per_s)

    def pause(self, key: str, seconds: float) -> None:
        bucket = self._bucket(key)
        if bucket is None:
            bucket = _Bucket(float("inf"), self.burst, self.burst, time.monotonic())
            self._buckets[key] = bucket
        bucket.paused_until = max(bucket.paused_until, time.monotonic() + seconds)
