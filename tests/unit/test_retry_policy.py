"""RetryPolicy: the backoff ladder, jitter bounds, Retry-After, attempt cap and expiry.

Time and randomness are passed in: nothing sleeps, every case is exact.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from dunning.workers.retries import RetryPolicy
from tests.factories import T0

FAR = T0 + timedelta(days=30)


class FixedRandom(random.Random):
    """uniform() always returns one end of the range (or the middle)."""

    def __init__(self, where: str) -> None:
        super().__init__(0)
        self.where = where

    def uniform(self, a: float, b: float) -> float:
        return {"low": a, "high": b, "mid": (a + b) / 2}[self.where]


def plan_after(
    policy: RetryPolicy, attempt: int, where: str = "mid", **kw: object
) -> timedelta | None:
    plan = policy.plan(
        attempt,
        now=T0,
        expires_at=kw.get("expires_at", FAR),  # type: ignore[arg-type]
        retry_after_s=kw.get("retry_after_s"),  # type: ignore[arg-type]
        rng=FixedRandom(where),
    )
    return None if plan.retry_at is None else plan.retry_at - T0


def test_ladder_without_jitter_follows_the_configured_steps() -> None:
    policy = RetryPolicy(delays_s=(10, 60, 300), max_attempts=10)
    waits = [plan_after(policy, n) for n in (1, 2, 3, 4, 5)]
    # Past the last step the ladder stays on it.
    assert waits == [timedelta(seconds=s) for s in (10, 60, 300, 300, 300)]


@pytest.mark.parametrize(("where", "factor"), [("low", 0.8), ("high", 1.2)])
def test_jitter_stays_within_its_ratio(where: str, factor: float) -> None:
    policy = RetryPolicy(delays_s=(100,), max_attempts=5, jitter_ratio=0.2)
    assert plan_after(policy, 1, where) == timedelta(seconds=100 * factor)


def test_jitter_spreads_a_batch() -> None:
    policy = RetryPolicy(delays_s=(100,), max_attempts=5)
    rng = random.Random(7)
    waits = {
        policy.plan(1, now=T0, expires_at=FAR, retry_after_s=None, rng=rng).retry_at
        for _ in range(50)
    }
    assert len(waits) > 40
    assert all(T0 + timedelta(seconds=80) <= w <= T0 + timedelta(seconds=120) for w in waits if w)


def test_a_longer_retry_after_wins_and_a_shorter_one_does_not() -> None:
    policy = RetryPolicy(delays_s=(10,), max_attempts=5)
    assert plan_after(policy, 1, retry_after_s=45) == timedelta(seconds=45)
    assert plan_after(policy, 1, retry_after_s=2) == timedelta(seconds=10)


def test_stops_at_max_attempts() -> None:
    policy = RetryPolicy(delays_s=(10,), max_attempts=3)
    assert plan_after(policy, 2) is not None
    plan = policy.plan(3, now=T0, expires_at=FAR, retry_after_s=None, rng=FixedRandom("mid"))
    assert (plan.retry_at, plan.give_up) == (None, "max_attempts")


def test_never_plans_a_retry_at_or_after_expiry() -> None:
    policy = RetryPolicy(delays_s=(60,), max_attempts=5)
    just_enough = T0 + timedelta(seconds=61)
    assert plan_after(policy, 1, expires_at=just_enough) == timedelta(seconds=60)
    plan = policy.plan(
        1,
        now=T0,
        expires_at=T0 + timedelta(seconds=60),
        retry_after_s=None,
        rng=FixedRandom("mid"),
    )
    assert (plan.retry_at, plan.give_up) == (None, "expires")
    late = policy.plan(
        1, now=T0, expires_at=just_enough, retry_after_s=3600, rng=FixedRandom("mid")
    )
    assert late.give_up == "expires"
