"""Frequency caps and cooldowns: pure functions over a person's ContactHistory.

Counting is conservative, because a cap is a ceiling the law sets:

* attempts whose dial outcome is unknown (None or ``pending``) always count;
* a ``rolling_days`` window of N days counts an attempt when it is within N*24 hours of now **or**
  on one of the last N local calendar days (so a 25-hour DST day never lets one slip out early);
* attempts dated after ``now`` (another worker's fresh claim) count too.

Every hit carries ``free_at``: the first instant at which that cap no longer blocks, so the gate can
defer to it rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dunning.clock import utc
from dunning.compliance.packs import CapRule
from dunning.intents import ContactIntent
from dunning.records import ContactAttempt, ContactHistory, DialOutcome

__all__ = ["CapHit", "check_cap", "check_caps", "counted_attempts", "in_cap_window"]

_UNKNOWN = frozenset({DialOutcome.PENDING})


@dataclass(frozen=True, slots=True)
class CapHit:
    """``rule`` blocks the intent: ``count`` attempts already counted, free again at ``free_at``."""

    rule: CapRule
    count: int
    free_at: datetime


def _midnight_after(at: datetime, days: int, tz: ZoneInfo) -> datetime:
    """UTC instant of local midnight ``days`` days after ``at``'s local date."""
    day = at.astimezone(tz).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def _same_key(rule: CapRule, intent: ContactIntent, attempt: ContactAttempt) -> bool:
    if rule.key == "debt":
        return attempt.debt_id == intent.debt_id
    if rule.key == "phone":
        # An attempt without a recorded number might have dialled this one: count it.
        return attempt.phone is None or attempt.phone == intent.recipient.phone
    return True


def _outcome_counts(rule: CapRule, outcome: DialOutcome | None) -> bool:
    if outcome is None or outcome in _UNKNOWN:
        return True
    if rule.count_outcomes is not None and outcome not in rule.count_outcomes:
        return False
    return outcome not in rule.exclude_outcomes


def counted_attempts(
    rule: CapRule, intent: ContactIntent, attempts: Iterable[ContactAttempt]
) -> list[ContactAttempt]:
    """The attempts ``rule`` counts for ``intent`` (channel, key and outcome filters; any time)."""
    return [
        a
        for a in attempts
        if (a.channel in rule.channels or a.channel in rule.also_count)
        and _same_key(rule, intent, a)
        and _outcome_counts(rule, a.dial_outcome)
    ]


def in_cap_window(rule: CapRule, at: datetime, now: datetime, tz: ZoneInfo) -> bool:
    """Whether an attempt at ``at`` still counts against ``rule`` at ``now``."""
    return now < _free_at(rule, at, tz)


def _free_at(rule: CapRule, at: datetime, tz: ZoneInfo) -> datetime:
    """When an attempt at ``at`` stops counting against ``rule``."""
    if rule.window == "calendar_day":
        return _midnight_after(at, 1, tz)
    return max(utc(at) + timedelta(days=rule.days), _midnight_after(at, rule.days, tz))


def _check_cooldown(
    rule: CapRule, intent: ContactIntent, history: ContactHistory, now: datetime, tz: ZoneInfo
) -> CapHit | None:
    triggers = [
        a
        for a in history.attempts
        if (a.channel in rule.channels or a.channel in rule.also_count)
        and _same_key(rule, intent, a)
        and a.dial_outcome in rule.trigger_outcomes
    ]
    # The trigger's own local day is day 1, so the block ends at midnight after day N.
    ends = [_midnight_after(a.at, rule.days, tz) for a in triggers]
    blocking = [end for end in ends if end > now]
    if not blocking:
        return None
    return CapHit(rule=rule, count=len(blocking), free_at=max(blocking))


def check_cap(
    rule: CapRule, intent: ContactIntent, history: ContactHistory, now: datetime, tz: ZoneInfo
) -> CapHit | None:
    """A CapHit when ``rule`` forbids contacting ``intent`` at ``now``, else None."""
    if intent.channel not in rule.channels:
        return None
    now = utc(now)
    if rule.kind == "cooldown":
        return _check_cooldown(rule, intent, history, now, tz)
    # An attempt counts until its free instant; one older than days + 26 h (a day plus a DST
    # hour past the local midnight) cannot count any more, so skip the zone arithmetic for it.
    horizon = now - timedelta(days=rule.days, hours=26)
    live = sorted(
        free
        for a in counted_attempts(rule, intent, history.attempts)
        if a.at > horizon and (free := _free_at(rule, a.at, tz)) > now
    )
    if len(live) < rule.limit:
        return None
    # One more contact fits once all but limit-1 of the live attempts have aged out.
    return CapHit(rule=rule, count=len(live), free_at=live[len(live) - rule.limit])


def check_caps(
    rules: Iterable[CapRule],
    intent: ContactIntent,
    history: ContactHistory,
    now: datetime,
    tz: ZoneInfo,
) -> CapHit | None:
    """The first cap (in pack order) that blocks ``intent`` at ``now``, or None."""
    for rule in rules:
        hit = check_cap(rule, intent, history, now, tz)
        if hit is not None:
            return hit
    return None
