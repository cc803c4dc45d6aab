"""Rules for one field of a raw account row: text, dates, amounts, flags, zones, choices.

Each function reads one column of a row (column -> text) and raises :class:`RowError` naming
the column when the value breaks a rule; reasons never quote personal data. The columns are
documented in ``docs/accounts.md``; :func:`dunning.producers.accounts.account_from_row` uses
these to build an Account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import get_currency_precision

from dunning.errors import DecodeError
from dunning.geo import degrees
from dunning.intents import EMAIL
from dunning.safe_text import text_problem

__all__ = [
    "AMOUNT_MAX_DIGITS",
    "EMAIL_MAX_CHARS",
    "ID_MAX_CHARS",
    "TEXT_MAX_CHARS",
    "RowError",
    "amount",
    "choice",
    "coordinate",
    "day",
    "email",
    "flag",
    "matching",
    "required_text",
    "safe",
    "text",
    "whole",
    "zone",
]

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# ASCII digits only: Python's Decimal also takes 1_000, 1e3, Arabic-Indic and full-width digits.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")

#: account_id and person_id: the width of the ledger's id columns.
ID_MAX_CHARS = 128
#: Other free text (address lines, city, region, postal code).
TEXT_MAX_CHARS = 200
EMAIL_MAX_CHARS = 254  # RFC 5321's limit on a forward path
#: Digits before the decimal point: up to 999,999,999,999. Beyond the decimal context's 28
#: digits every worker would fail on the amount (InvalidOperation) while formatting it.
AMOUNT_MAX_DIGITS = 12


#: Columns that must be present and non-empty in every row.
class RowError(ValueError):
    """One row breaks a rule; ``column`` names the culprit when one is to blame."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        self.reason = reason
        self.column = column
        super().__init__(f"{column}: {reason}" if column else reason)


def text(row: Mapping[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def required_text(row: Mapping[str, str], column: str) -> str:
    value = text(row, column)
    if not value:
        raise RowError("is required", column)
    return value


def safe(
    row: Mapping[str, str],
    column: str,
    max_chars: int,
    *,
    multiline: bool = False,
    required: bool = False,
) -> str:
    """Free text that reaches messages, headers or the ledger: printable, bounded, no encoded
    words (dunning/safe_text.py). The reason never quotes the value: it may be personal data."""
    value = required_text(row, column) if required else text(row, column)
    problem = text_problem(value, max_chars=max_chars, multiline=multiline)
    if problem is not None:
        raise RowError(problem, column)
    return value


def day(row: Mapping[str, str], column: str) -> date | None:
    value = text(row, column)
    if not value:
        return None
    if not _ISO_DAY.match(value):
        raise RowError(f"{value!r} is not a date like 2026-11-28", column)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RowError(f"{value!r} is not a valid date", column) from None


def amount(
    row: Mapping[str, str], column: str, currency: str, default: Decimal | None = None
) -> Decimal:
    """A plain ASCII decimal (``1234.50``) with at most the currency's minor digits."""
    value = text(row, column)
    if not value and default is not None:
        return default
    minor = get_currency_precision(currency)
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise RowError(
            f"{value[:40]!r} is not a non-negative decimal amount like 1234.50 (ASCII digits,"
            f" '.' as the separator, no exponent or thousands separator)",
            column,
        )
    whole, fraction = match.group(1).lstrip("0"), match.group(2) or ""
    if len(whole) > AMOUNT_MAX_DIGITS:
        raise RowError(
            f"has {len(whole)} digits before the point; at most {AMOUNT_MAX_DIGITS} are allowed",
            column,
        )
    if len(fraction) > minor:
        raise RowError(f"has {len(fraction)} decimals; {currency} has at most {minor}", column)
    return Decimal(value)


def flag(row: Mapping[str, str], column: str) -> bool:
    value = text(row, column).lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RowError(f"{value!r} is not a flag (true/false/1/0/yes/no/empty)", column)


def zone(value: str) -> str:
    # ZoneInfo would also accept a file path; an account's zone must be an IANA key.
    if value.startswith(("/", ".")) or ".." in value:
        raise RowError(f"{value!r} is not an IANA time zone", "timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"{value!r} is not an IANA time zone", "timezone") from None
    return value


def matching(
    row: Mapping[str, str], column: str, pattern: re.Pattern[str], what: str, *, pii: bool = False
) -> str:
    value = text(row, column)
    if value and not pattern.match(value):
        # A phone number or email is personal data: the reason (logged, printed) never echoes it.
        shown = "the value" if pii else repr(value)
        raise RowError(f"{shown} is not {what}", column)
    return value


def coordinate(row: Mapping[str, str], column: str, limit: int) -> str | None:
    try:
        return degrees(text(row, column) or None, limit, column)
    except DecodeError as exc:
        raise RowError(exc.reason, column) from None


def email(row: Mapping[str, str]) -> str:
    # The address goes into the To header: the header rules apply on top of the pattern.
    return matching(row, "email", EMAIL, "an email address", pii=True) and safe(
        row, "email", EMAIL_MAX_CHARS
    )


def choice(row: Mapping[str, str], column: str, allowed: frozenset[str], default: str) -> str:
    value = text(row, column) or default
    if value not in allowed:
        raise RowError(f"{value!r} is not one of {', '.join(sorted(allowed))}", column)
    return value


def whole(row: Mapping[str, str], column: str, low: int, high: int) -> int | None:
    value = text(row, column)
    if not value:
        return None
    if not value.isascii() or not value.lstrip("-").isdigit():
        raise RowError(f"{value[:20]!r} is not a whole number", column)
    number = int(value)
    if not low <= number <= high:
        raise RowError(f"{number} is outside {low}..{high}", column)
    return number
