"""Retry policy: exponential ladder with jitter, an attempt cap, and the intent's expiry.

A policy is a small value object with one pure method; randomness and time are passed in, so
tests pin both and never sleep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["RetryPlan", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """What to do after a transient failure: ``retry_at`` set, or give up with ``give_up``."""

    retry_at: datetime | None
    give_up: str | None = None  # "max_attempts" or "expires"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays_s: tuple[int, ...] = (10, 60, 300, 1800, 7200)
    max_attempts: int = 6
    jitter_ratio: float = (
        0.2  # each delay varies by ±20 % so a failed batch does not retry in lockstep
    )

    def plan(
        self,
        attempt: int,
        *,
        now: datetime,
        expires_at: datetime,
        retry_after_s: float | None,
        rng: random.Random,
    ) -> RetryPlan:
        """Plan the retry after failed ``attempt`` (1-based); a longer Retry-After wins."""
        if attempt >= self.max_attempts:
            return RetryPlan(None, "max_attempts")
        base = self.delays_s[min(attempt - 1, len(self.delays_s) - 1)]
        delay_s = base * (1 + rng.uniform(-self.jitter_ratio, self.jitter_ratio))
        if retry_after_s is not None:
            delay_s = max(delay_s, retry_after_s)
        retry_at = now + timedelta(seconds=delay_s)
        if retry_at >= expires_at:
            return RetryPlan(None, "expires")
        return RetryPlan(retry_at)
