"""Injectable clocks: every policy that reads the time takes one of these.

``SystemClock`` is wall time. ``ShiftedClock`` starts at a chosen instant and advances in real
time (``DUNNING_NOW``), so a drill "at 21:59:30 in Shanghai" runs from the command line.
``ManualClock`` only moves when told, for tests that must never sleep.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "ShiftedClock", "SystemClock", "utc"]


def utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; refuses naive datetimes, whose zone would be a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """Starts at ``start`` and advances with the monotonic clock."""

    def __init__(self, start: datetime) -> None:
        self._start = utc(start)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


class ManualClock:
    """A clock that moves only through :meth:`advance` or :meth:`set`."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, instant: datetime) -> None:
        self._now = utc(instant)
