"""The Redis limiter on the machine's Redis: one budget for many processes, pauses shared."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from redis import asyncio as aioredis

from dunning.workers.ratelimit.redis import LimiterUnavailableError, RedisRateLimiter
from tests.services import REDIS_URL, require

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]

# One worker-like process: several tasks acquiring the same key until the window closes; prints
# the wall-clock instants its sends were allowed.
PROBE = """
import asyncio, json, sys, time
from dunning.workers.ratelimit.redis import RedisRateLimiter

url, prefix, rate, start_at, duration_s = sys.argv[1], sys.argv[2], float(sys.argv[3]), \\
    float(sys.argv[4]), float(sys.argv[5])

async def main():
    limiter = RedisRateLimiter(url, {"sms:account:AC": rate}, prefix=prefix)
    grants = []
    async def task():
        while time.time() < start_at + duration_s:
            await limiter.acquire("sms:account:AC", "sms:sender:S")
            grants.append(time.time())
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await asyncio.gather(*(task() for _ in range(8)))
    await limiter.aclose()
    print(json.dumps(grants))

asyncio.run(main())
"""


def test_three_processes_never_exceed_one_shared_limit() -> None:
    require("redis")
    rate_per_s, duration_s = 100.0, 3.0
    prefix = f"test:{uuid.uuid4().hex}:"
    start_at = time.time() + 2.0  # every process has imported and connected by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PROBE,
                REDIS_URL,
                prefix,
                str(rate_per_s),
                str(start_at),
                str(duration_s),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    per_process: list[list[float]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        per_process.append(json.loads(out))
    window = [t for grants in per_process for t in grants if start_at <= t < start_at + duration_s]
    expected = rate_per_s * duration_s
    # The limit is a ceiling: three processes together never get more than 5 % over it. How
    # close they get below it depends on how much CPU the box leaves them, so the floor only
    # proves they kept asking at about the limit's pace.
    assert len(window) <= 1.05 * expected, (len(window), expected)
    assert len(window) >= 0.5 * expected, (len(window), expected)
    assert all(len(grants) > 0.1 * expected / 3 for grants in per_process)  # all three competed
    # No one-second stretch exceeded the limit either (a fixed window fails this).
    ordered = sorted(window)
    for i, first in enumerate(ordered):
        in_second = sum(1 for t in ordered[i:] if t < first + 1.0)
        assert in_second <= rate_per_s * 1.05 + 1


async def test_a_pause_from_one_process_holds_another() -> None:
    require("redis")
    prefix = f"test:{uuid.uuid4().hex}:"
    first = RedisRateLimiter(REDIS_URL, {"sms:account:AC": 1000.0}, prefix=prefix)
    second = RedisRateLimiter(REDIS_URL, {"sms:account:AC": 1000.0}, prefix=prefix)
    try:
        assert await second.acquire("sms:account:AC") == 0.0
        await first.pause_now("sms:account:AC", 0.5)
        waited = await second.acquire("sms:account:AC", "sms:sender:S")
        assert waited > 0.3  # it was told to wait for the pause, not sent at once
        assert await second.acquire("sms:recipient:x") == 0.0  # other keys are not paused
    finally:
        await first.aclose()
        await second.aclose()


async def test_pause_given_during_a_wait_is_honoured_after_it() -> None:
    require("redis")
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(REDIS_URL, {"k": 2.0}, prefix=prefix)
    raw = aioredis.Redis.from_url(REDIS_URL)
    try:
        await limiter.acquire("k")
        booked = await raw.get(f"{prefix}tat:k")
        waiting = asyncio.create_task(limiter.acquire("k"))  # books the slot 0.5 s ahead
        async with asyncio.timeout(10):
            while await raw.get(f"{prefix}tat:k") == booked:  # noqa: ASYNC110  state lives in Redis
                await asyncio.sleep(0.005)  # poll until the reservation is in Redis
        limiter.pause("k", 1.0)
        waited = await asyncio.wait_for(waiting, timeout=10)
        assert waited > 0.8
    finally:
        await limiter.aclose()
        await raw.aclose()


async def test_an_unreachable_redis_is_a_dunning_error() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", {"k": 1.0})
    try:
        with pytest.raises(LimiterUnavailableError, match="rate limiter store failed"):
            await limiter.acquire("k")
    finally:
        await limiter.aclose()


async def test_worker_wiring_shares_limits_through_redis_when_configured() -> None:
    require("redis")
    from dunning.intents import Channel
    from dunning.settings import Settings
    from dunning.workers.assembly import build_limiter, channel_limits

    settings = Settings(redis_url=REDIS_URL, config_dir=ROOT / "config")
    limiter = build_limiter(settings, channel_limits(settings, Channel.SMS))
    assert isinstance(limiter, RedisRateLimiter)
    await limiter.aclose()
