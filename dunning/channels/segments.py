"""SMS segment counting: GSM-7 (160 per single message, 153 per concatenated part) or UCS-2.

A message that holds any character outside the GSM 03.38 alphabet (all Chinese text) is sent as
UCS-2: 70 UTF-16 code units in a single message, 67 per part when concatenated (the rest of each
part is the concatenation header). Characters of the GSM extension table (``^{}\\[~]|€`` and form
feed) cost two septets, because they are sent as ESC + char. A character outside the Basic
Multilingual Plane (emoji) costs two UCS-2 code units.

The count is an estimate of what the carrier bills: carriers do not split an escape pair or a
surrogate pair across parts, which can add one part to a message that is exactly at a boundary.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["Encoding", "SegmentCount", "count_segments"]

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


class Encoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """``units`` are septets (GSM-7) or UTF-16 code units (UCS-2); ``segments`` the billed parts."""

    encoding: Encoding
    units: int
    segments: int


def _gsm7_septets(text: str) -> int | None:
    """Septets needed for ``text`` in GSM-7, or None when a character is outside the alphabet."""
    septets = 0
    for char in text:
        if char in _GSM7_BASIC:
            septets += 1
        elif char in _GSM7_EXTENSION:
            septets += 2
        else:
            return None
    return septets


def _segments(units: int, single: int, part: int) -> int:
    if units == 0:
        return 1  # an empty body is still one (billed) message
    return 1 if units <= single else math.ceil(units / part)


def count_segments(text: str) -> SegmentCount:
    """How ``text`` is encoded and how many SMS parts it takes."""
    septets = _gsm7_septets(text)
    if septets is not None:
        return SegmentCount(Encoding.GSM7, septets, _segments(septets, GSM7_SINGLE, GSM7_PART))
    code_units = len(text.encode("utf-16-le")) // 2
    return SegmentCount(Encoding.UCS2, code_units, _segments(code_units, UCS2_SINGLE, UCS2_PART))
