"""Contact windows in the debtor's local time, across DST changes and far-off zones.

All instants in and out are timezone-aware; results are in UTC. A local opening time that falls
in a DST gap resolves to the first instant after the gap (zoneinfo's ``fold=0``), which is the
earliest instant whose local time is past the opening; an ambiguous one (fall back) resolves to
its first occurrence.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dunning.clock import utc
from dunning.compliance.packs import Window

__all__ = ["allowed", "jitter_s_for", "local_midnight", "next_opening", "zone_or_none"]

# Enough to step over a skipped calendar day (Samoa, 2011-12-30) and reach the next opening.
_SEARCH_DAYS = 4


def zone_or_none(name: str) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when it is unknown or malformed."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def allowed(now: datetime, tz: ZoneInfo, window: Window) -> bool:
    """True when ``now`` falls inside ``window`` in local time (start inclusive, end exclusive)."""
    local = utc(now).astimezone(tz).time().replace(tzinfo=None)
    return window.start <= local < window.end


def jitter_s_for(seed: str, jitter_s: int) -> int:
    """A stable offset in ``[0, jitter_s)`` seconds derived from ``seed`` (an intent id)."""
    if jitter_s <= 0:
        return 0
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") % jitter_s


def local_midnight(day_offset: int, now: datetime, tz: ZoneInfo) -> datetime:
    """UTC instant of the local midnight ``day_offset`` days after ``now``'s local date."""
    local_day = utc(now).astimezone(tz).date() + timedelta(days=day_offset)
    return datetime(local_day.year, local_day.month, local_day.day, tzinfo=tz).astimezone(UTC)


def next_opening(
    now: datetime, tz: ZoneInfo, window: Window, jitter_s: int = 0, seed: str = ""
) -> datetime:
    """The earliest allowed instant at or after ``now``, in UTC.

    ``now`` itself when the window is open. Otherwise the next local opening plus a stable jitter
    in ``[0, jitter_s)`` seconds (hash of ``seed``), capped so the result stays inside the window.
    """
    now = utc(now)
    if allowed(now, tz, window):
        return now
    today = now.astimezone(tz).date()
    for offset in range(_SEARCH_DAYS):
        day = today + timedelta(days=offset)
        opening = datetime.combine(day, window.start, tzinfo=tz).astimezone(UTC)
        closing = datetime.combine(day, window.end, tzinfo=tz).astimezone(UTC)
        if opening < now or closing <= opening or not allowed(opening, tz, window):
            continue
        open_s = int((closing - opening).total_seconds())
        shift_s = min(jitter_s_for(seed, jitter_s), max(open_s - 1, 0))
        candidate = opening + timedelta(seconds=shift_s)
        if allowed(candidate, tz, window):
            return candidate
        return opening
    # Unreachable for any real zone; fail closed by pushing a full search span out.
    return now + timedelta(days=_SEARCH_DAYS)
