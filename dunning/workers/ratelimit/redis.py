"""Rate limits shared by every worker process through Redis (``DUNNING_REDIS_URL``).

The same GCRA as :mod:`dunning.workers.ratelimit.limiter`, run as one Lua script per ``acquire``
so the read-reserve-write is atomic across processes, on the Redis server's clock (``TIME``) so
processes on hosts with skewed clocks agree. Measured here before choosing: per-process buckets
let 4 processes through at 4x the limit and a fixed window allowed bursts of 1.5x; a
reservation per send holds the limit exactly.

A provider 429 is stored as a pause key, so every process sees it on its next ``acquire``;
a task that already holds a reservation checks the pause again after its sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from dunning.errors import DunningError
from dunning.workers.ratelimit.limiter import GcraLimit, Rates, limits_for

__all__ = ["LimiterUnavailableError", "RedisRateLimiter"]

log = structlog.get_logger(__name__)

_US = 1_000_000

# KEYS: n rate keys, then the pause keys. ARGV: n, then interval_us and tolerance_us per rate key.
# Returns {wait_us, reserved_at_us}; times are microseconds of the server clock.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local at = now
for i = n + 1, #KEYS do
  local p = tonumber(redis.call('GET', KEYS[i]) or '0')
  if p > at then at = p end
end
local tats = {}
for i = 1, n do
  tats[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  local earliest = tats[i] - tonumber(ARGV[2 * i + 1])
  if earliest > at then at = earliest end
end
for i = 1, n do
  local tat = tats[i]
  if tat < at then tat = at end
  tat = tat + tonumber(ARGV[2 * i])
  local ttl_ms = math.ceil((tat - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', ttl_ms)
end
return {string.format('%.0f', at - now), string.format('%.0f', at)}
"""

# KEYS: the pause key. ARGV: pause length in microseconds. A longer pause already set wins.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > current then
  redis.call('SET', KEYS[1], string.format('%.0f', untl), 'PX', math.ceil(ARGV[1] / 1000) + 1000)
end
return string.format('%.0f', untl)
"""


class LimiterUnavailableError(DunningError):
    """Redis could not be reached or refused the limiter's script; the send must not go."""


class RedisRateLimiter:
    """GCRA limits per key in Redis; keys without a configured rate are unlimited.

    ``rates_per_s`` maps a key to sends per second, ``burst`` sends may go back to back.
    ``prefix`` namespaces the Redis keys (tests use one of their own). Close with ``aclose``.
    """

    def __init__(
        self,
        redis_url: str,
        rates_per_s: Rates,
        *,
        burst: int = 1,
        prefix: str = "dunning:rl:",
        client: Any | None = None,
    ) -> None:
        self.rates_per_s = rates_per_s
        self.burst = burst
        self.prefix = prefix
        self._redis: Any = client or aioredis.Redis.from_url(redis_url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._pause = self._redis.register_script(_PAUSE)
        self._pending: set[asyncio.Task[None]] = set()

    def _limits(self, keys: Sequence[str]) -> dict[str, GcraLimit]:
        return limits_for(self.rates_per_s, keys, self.burst)

    def _pause_key(self, key: str) -> str:
        return f"{self.prefix}pause:{key}"

    async def acquire(self, *keys: str) -> float:
        limits = self._limits(keys)
        redis_keys = [f"{self.prefix}tat:{k}" for k in limits]
        redis_keys += [self._pause_key(k) for k in dict.fromkeys(keys)]
        args: list[int] = [len(limits)]
        for limit in limits.values():
            args += [round(limit.interval_s * _US), round(limit.tolerance_s * _US)]
        waited_s = 0.0
        while True:
            try:
                wait_us, at_us = await self._acquire(keys=redis_keys, args=args)
            except RedisError as exc:
                raise LimiterUnavailableError(f"rate limiter store failed: {exc}") from exc
            wait_s = int(wait_us) / _US
            if wait_s <= 0:
                return waited_s
            await asyncio.sleep(wait_s)
            waited_s += wait_s
            if not await self._paused_after(keys, int(at_us)):
                return waited_s
            # A provider 429 arrived while we slept: the slot is forfeited, queue after it.

    async def _paused_after(self, keys: Sequence[str], at_us: int) -> bool:
        try:
            values = await self._redis.mget([self._pause_key(k) for k in keys])
        except RedisError as exc:
            raise LimiterUnavailableError(f"rate limiter store failed: {exc}") from exc
        return any(v is not None and int(v) > at_us for v in values)

    def pause(self, key: str, seconds: float) -> None:
        """Store the pause for every process; returns at once (the write runs as a task)."""
        task = asyncio.get_running_loop().create_task(self.pause_now(key, seconds))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def pause_now(self, key: str, seconds: float) -> None:
        """Store the pause and wait until Redis has it."""
        try:
            await self._pause(keys=[self._pause_key(key)], args=[round(seconds * _US)])
        except RedisError as exc:
            # The message that hit the 429 is delayed anyway; other sends find out by their
            # own 429s, so a lost pause costs throughput, not correctness.
            log.warning("ratelimit.pause_not_stored", key=key, error=str(exc))
        else:
            log.info("ratelimit.paused", key=key, seconds=seconds)

    async def ping(self) -> None:
        """One round trip to Redis (the worker's readiness probe); raises when it fails."""
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise LimiterUnavailableError(f"rate limiter store failed: {exc}") from exc

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._redis.aclose()
