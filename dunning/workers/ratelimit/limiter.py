"""Rate limits a worker waits on before each send: GCRA reservations by key.

A wait here never consumes a retry and never nacks: the message stays in hand while the task
sleeps. A provider 429 pauses the whole key (``pause``), so every send on that provider account
waits. The interface is the :class:`RateLimiter` protocol; :class:`LocalRateLimiter` keeps the
state in this process, :class:`dunning.workers.ratelimit.redis.RedisRateLimiter` in Redis so all
worker processes share one budget.

The algorithm is GCRA (the generic cell rate algorithm, a leaky bucket as a meter): per key a
"theoretical arrival time" ``tat``; a send at instant ``t`` is allowed when
``t >= tat - tolerance`` and moves ``tat`` to ``max(tat, t) + interval``. One ``acquire`` over
several keys (provider account, sender, recipient) reserves one instant valid for all of them,
so waiting on one key never spends another key's budget early. A reservation is taken at once
and the caller sleeps until it: one state update per send, first come first served.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "GcraLimit",
    "LocalRateLimiter",
    "RateLimiter",
    "Rates",
    "Unlimited",
    "limits_for",
    "recipient_token",
    "reserve",
]


class RateLimiter(Protocol):
    async def acquire(self, *keys: str) -> float:
        """Wait until one send on every key in ``keys`` is allowed; returns the seconds waited.

        Keys without a configured rate do not limit; a paused key holds the send until the
        pause ends."""
        ...

    def pause(self, key: str, seconds: float) -> None:
        """Hold every send on ``key`` for ``seconds`` (a provider said slow down)."""
        ...


class Unlimited:
    """The limiter of a worker without rate limits."""

    async def acquire(self, *keys: str) -> float:
        return 0.0

    def pause(self, key: str, seconds: float) -> None:
        return None


@dataclass(frozen=True, slots=True)
class GcraLimit:
    """``rate_per_s`` sends per second with ``burst`` of them allowed back to back."""

    rate_per_s: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"rate_per_s must be a positive number, got {self.rate_per_s!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst!r}")

    @property
    def interval_s(self) -> float:
        return 1.0 / self.rate_per_s

    @property
    def tolerance_s(self) -> float:
        return (self.burst - 1) * self.interval_s


def reserve(
    tats: Mapping[str, float],
    limits: Mapping[str, GcraLimit],
    now: float,
    paused_until: float = 0.0,
) -> tuple[float, dict[str, float]]:
    """Reserve one send on every key of ``limits``: the instant it may go and the new ``tat``s.

    ``tats`` holds each key's theoretical arrival time (missing: never used); times are seconds
    on any one clock. Pure, so the Redis script and the local limiter share its arithmetic.
    """
    at = max(now, paused_until)
    for key, limit in limits.items():
        at = max(at, tats.get(key, at) - limit.tolerance_s)
    updated = {key: max(tats.get(key, at), at) + lim.interval_s for key, lim in limits.items()}
    return at, updated


#: Sends per second by key: a mapping, or a function (None: the key is not limited).
Rates = Mapping[str, float] | Callable[[str], float | None]


def limits_for(rates: Rates, keys: Sequence[str], burst: int) -> dict[str, GcraLimit]:
    """The limits that apply to ``keys`` (each key once, unlimited keys left out)."""
    found: dict[str, GcraLimit] = {}
    for key in dict.fromkeys(keys):
        rate = rates(key) if callable(rates) else rates.get(key)
        if rate is not None:
            found[key] = GcraLimit(rate, burst)
    return found


def recipient_token(address: str) -> str:
    """A short stable digest of a phone number or email: a key that does not store the PII."""
    return hashlib.blake2s(address.strip().lower().encode(), digest_size=10).hexdigest()


@dataclass
class LocalRateLimiter:
    """GCRA per key for one process; keys without a configured rate are unlimited.

    ``rates_per_s`` maps a key to sends per second; ``burst`` sends may go back to back.
    ``clock`` (monotonic seconds) and ``sleep`` are injectable so tests never sleep.
    """

    rates_per_s: Rates
    burst: int = 1
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = asyncio.sleep
    _tats: dict[str, float] = field(default_factory=dict)
    _paused_until: dict[str, float] = field(default_factory=dict)

    def limits_for(self, keys: Sequence[str]) -> dict[str, GcraLimit]:
        return limits_for(self.rates_per_s, keys, self.burst)

    async def acquire(self, *keys: str) -> float:
        waited_s = 0.0
        limits = self.limits_for(keys)
        while True:
            now = self.clock()
            paused = max((self._paused_until.get(k, 0.0) for k in keys), default=0.0)
            if not limits:
                if paused <= now:
                    return waited_s
                at = paused
            else:
                # No await between reading and writing the state: asyncio makes this atomic.
                at, updated = reserve(self._tats, limits, now, paused)
                self._tats.update(updated)
            if at <= now:
                return waited_s
            await self.sleep(at - now)  # type: ignore[misc]  # asyncio.sleep or a test double
            waited_s += at - now
            if not self._paused_after(keys, at):
                return waited_s
            # A pause arrived while we slept: our slot is forfeited, queue again after it.

    def _paused_after(self, keys: Sequence[str], at: float) -> bool:
        return any(self._paused_until.get(k, 0.0) > at for k in keys)

    def pause(self, key: str, seconds: float) -> None:
        until = self.clock() + seconds
        self._paused_until[key] = max(self._paused_until.get(key, 0.0), until)
