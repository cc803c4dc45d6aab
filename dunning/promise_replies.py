"""Promises to pay made by the debtor: an SMS reply with a day, or a day keyed in on a call.

One list of keywords for the webhook and the docs (docs/promises.md): ``PROMISE 2026-12-10``,
``PTP 12/10``, ``承诺 2026-12-10``, ``承诺还款 12月10日``. On a call the day is keyed as four
digits, month and day (``1210``). A day without a year is the next such day; a day in the past
or more than :data:`MAX_PROMISE_DAYS` ahead is no promise (the reply goes to an agent).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

__all__ = ["MAX_PROMISE_DAYS", "PROMISE_KEYWORDS", "parse_keypad_day", "parse_promise_reply"]

#: The furthest day a promise may name, counted from the day it is made (the policy's limit).
MAX_PROMISE_DAYS = 30
PROMISE_KEYWORDS = frozenset({"PROMISE", "PTP", "承诺", "承诺还款", "还款"})
_REPLY = re.compile(
    r"^\s*(?P<word>[A-Za-z]+|[\u4e00-\u9fff]+)\s*[:：]?\s*"
    r"(?:(?P<year>\d{4})[-/.年])?(?P<month>\d{1,2})[-/.月](?P<day>\d{1,2})日?\s*[.。!！]?\s*$"
)


def _within_limit(year: int | None, month: int, day_of_month: int, today: date) -> date | None:
    try:
        day = date(year or today.year, month, day_of_month)
        if year is None and day < today:
            day = day.replace(year=today.year + 1)
    except ValueError:
        return None
    return day if today <= day <= today + timedelta(days=MAX_PROMISE_DAYS) else None


def parse_promise_reply(body: str, today: date) -> date | None:
    """The day a reply like ``PROMISE 2026-12-10`` or ``承诺 12月10日`` promises, else None."""
    match = _REPLY.match(body.strip())
    if match is None or match.group("word").upper() not in PROMISE_KEYWORDS:
        return None
    year = int(match.group("year")) if match.group("year") else None
    return _within_limit(year, int(match.group("month")), int(match.group("day")), today)


def parse_keypad_day(digits: str, today: date) -> date | None:
    """The day keyed on a call as MMDD (``1210``), within the limit, else None."""
    if len(digits) != 4 or not digits.isascii() or not digits.isdigit():
        return None
    return _within_limit(None, int(digits[:2]), int(digits[2:]), today)
