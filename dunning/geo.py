"""Map coordinates of a visit address: decimal degrees, checked once for books and intents."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from dunning.errors import DecodeError

__all__ = ["LATITUDE_LIMIT", "LONGITUDE_LIMIT", "degrees"]

LATITUDE_LIMIT = 90
LONGITUDE_LIMIT = 180


def degrees(value: str | None, limit: int, name: str) -> str | None:
    """``value`` when it is decimal degrees within +-``limit`` (kept as the text it came as).

    Raises DecodeError naming ``name`` otherwise; None passes through (the column is optional).
    """
    try:
        if value is None or abs(Decimal(value)) <= limit:
            return value
    except InvalidOperation:
        pass  # NaN and text that is no number get the same words as a number out of range
    raise DecodeError(f"{value!r} is not decimal degrees within +-{limit}", field=name)
