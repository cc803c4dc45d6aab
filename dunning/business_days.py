"""US business days: the legal public holidays of 5 USC 6103(a), computed for any year.

Regulation F assumes a notice is received five days after it is sent, not counting Saturdays,
Sundays or legal public holidays (12 CFR 1006.34(b)(5)), and the validation period ends 30 days
after that. A holiday on a Saturday is observed the Friday before, one on a Sunday the Monday
after (5 USC 6103(b); Executive Order 11582). The dates are computed rather than listed, so no
table runs out. Rules and sources: docs/legal.md, "Validation notice".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

__all__ = [
    "ValidationPeriod",
    "add_business_days",
    "is_business_day",
    "us_federal_holidays",
    "validation_period",
]

_MON, _THU, _SAT, _SUN = 0, 3, 5, 6


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == _SAT:
        return day - timedelta(days=1)
    if day.weekday() == _SUN:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def _holidays_of(year: int) -> dict[date, str]:
    """The legal public holidays of ``year`` (5 USC 6103(a)), keyed by their observed day."""
    fixed = [
        (date(year, 1, 1), "New Year's Day"),
        (date(year, 7, 4), "Independence Day"),
        (date(year, 11, 11), "Veterans Day"),
        (date(year, 12, 25), "Christmas Day"),
    ]
    if year >= 2021:  # Juneteenth National Independence Day Act, 17 June 2021
        fixed.append((date(year, 6, 19), "Juneteenth National Independence Day"))
    floating = [
        (_nth_weekday(year, 1, _MON, 3), "Birthday of Martin Luther King, Jr."),
        (_nth_weekday(year, 2, _MON, 3), "Washington's Birthday"),
        (_last_weekday(year, 5, _MON), "Memorial Day"),
        (_nth_weekday(year, 9, _MON, 1), "Labor Day"),
        (_nth_weekday(year, 10, _MON, 2), "Columbus Day"),
        (_nth_weekday(year, 11, _THU, 4), "Thanksgiving Day"),
    ]
    return {_observed(day): name for day, name in fixed} | dict(floating)


def us_federal_holidays(year: int) -> dict[date, str]:
    """Observed legal public holidays falling in ``year`` (a 1 January on a Saturday is
    observed on 31 December of the year before, and is listed in that year)."""
    candidates = {**_holidays_of(year), **_holidays_of(year + 1)}
    return {day: name for day, name in sorted(candidates.items()) if day.year == year}


def is_business_day(day: date) -> bool:
    """Not a Saturday, a Sunday or an observed legal public holiday."""
    return day.weekday() < _SAT and day not in us_federal_holidays(day.year)


def add_business_days(start: date, days: int) -> date:
    """The ``days``-th business day after ``start`` (``start`` itself never counts)."""
    day, left = start, days
    while left > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            left -= 1
    return day


@dataclass(frozen=True, slots=True)
class ValidationPeriod:
    """When a notice was sent, when receipt is assumed, and the last day of the period."""

    sent_on: date
    assumed_receipt: date
    ends_on: date

    def open_on(self, day: date) -> bool:
        return self.sent_on <= day <= self.ends_on


def validation_period(
    sent_on: date, *, receipt_business_days: int = 5, period_days: int = 30
) -> ValidationPeriod:
    """The validation period of a notice sent on ``sent_on`` (1006.34(b)(5))."""
    receipt = add_business_days(sent_on, receipt_business_days)
    return ValidationPeriod(sent_on, receipt, receipt + timedelta(days=period_days))
