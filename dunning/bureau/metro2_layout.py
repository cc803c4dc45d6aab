"""The Metro 2 character format (426-byte records): field positions and how values are written.

Positions are 1-based and inclusive, as the CDIA Credit Reporting Resource Guide lists them;
docs/bureau.md ("Metro 2 layout") has the same tables. Kinds:

- ``A`` alphanumeric: upper case, left-justified, blank-filled; characters outside printable
  ASCII are transliterated (NFKD) or dropped;
- ``N`` numeric: right-justified, zero-filled; money in whole units (cents truncated);
- ``D`` date ``MMDDYYYY``, zero-filled when there is none;
- ``T`` time stamp ``MMDDYYYYHHMMSS`` (UTC).

A value that does not fit its field is a :class:`ValueError` naming the segment and field:
nothing is silently cut but alphanumeric text, which the format itself truncates.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

__all__ = [
    "BASE",
    "BASE_LENGTH",
    "HEADER",
    "K1",
    "K1_LENGTH",
    "TRAILER",
    "TRAILER_STATUSES",
    "Field",
    "alpha",
    "day",
    "format_segment",
    "parse_segment",
    "stamp",
    "whole",
    "write_segment",
]

Kind = Literal["A", "N", "D", "T"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    start: int  # 1-based
    length: int
    kind: Kind

    @property
    def end(self) -> int:
        return self.start + self.length - 1


def _layout(*fields: tuple[str, int, int, Kind]) -> tuple[Field, ...]:
    out = tuple(Field(*f) for f in fields)
    position = 1
    for f in out:  # the tables must tile the record: a typo in a position fails at import
        if f.start != position:
            raise AssertionError(f"{f.name} starts at {f.start}, expected {position}")
        position = f.end + 1
    return out


HEADER = _layout(
    ("record_descriptor_word", 1, 4, "N"), ("record_identifier", 5, 6, "A"),
    ("cycle_identifier", 11, 2, "A"), ("innovis_program_identifier", 13, 10, "A"),
    ("equifax_program_identifier", 23, 10, "A"), ("experian_program_identifier", 33, 5, "A"),
    ("transunion_program_identifier", 38, 10, "A"), ("activity_date", 48, 8, "D"),
    ("date_created", 56, 8, "D"), ("program_date", 64, 8, "D"),
    ("program_revision_date", 72, 8, "D"), ("reporter_name", 80, 40, "A"),
    ("reporter_address", 120, 96, "A"), ("reporter_telephone", 216, 10, "N"),
    ("software_vendor_name", 226, 40, "A"), ("software_version", 266, 5, "A"),
    ("prbc_program_identifier", 271, 10, "A"), ("reserved", 281, 146, "A"),
)  # fmt: skip

BASE = _layout(
    ("record_descriptor_word", 1, 4, "N"), ("processing_indicator", 5, 1, "N"),
    ("time_stamp", 6, 14, "T"), ("correction_indicator", 20, 1, "A"),
    ("identification_number", 21, 20, "A"), ("cycle_identifier", 41, 2, "A"),
    ("consumer_account_number", 43, 30, "A"), ("portfolio_type", 73, 1, "A"),
    ("account_type", 74, 2, "A"), ("date_opened", 76, 8, "D"), ("credit_limit", 84, 9, "N"),
    ("highest_credit", 93, 9, "N"), ("terms_duration", 102, 3, "A"),
    ("terms_frequency", 105, 1, "A"), ("scheduled_monthly_payment", 106, 9, "N"),
    ("actual_payment", 115, 9, "N"), ("account_status", 124, 2, "A"),
    ("payment_rating", 126, 1, "A"), ("payment_history_profile", 127, 24, "A"),
    ("special_comment", 151, 2, "A"), ("compliance_condition_code", 153, 2, "A"),
    ("current_balance", 155, 9, "N"), ("amount_past_due", 164, 9, "N"),
    ("original_charge_off_amount", 173, 9, "N"), ("date_of_account_information", 182, 8, "D"),
    ("date_of_first_delinquency", 190, 8, "D"), ("date_closed", 198, 8, "D"),
    ("date_of_last_payment", 206, 8, "D"), ("interest_type_indicator", 214, 1, "A"),
    ("reserved", 215, 17, "A"), ("surname", 232, 25, "A"), ("first_name", 257, 20, "A"),
    ("middle_name", 277, 20, "A"), ("generation_code", 297, 1, "A"),
    ("social_security_number", 298, 9, "N"), ("date_of_birth", 307, 8, "D"),
    ("telephone_number", 315, 10, "N"), ("ecoa_code", 325, 1, "A"),
    ("consumer_information_indicator", 326, 2, "A"), ("country_code", 328, 2, "A"),
    ("first_line_of_address", 330, 32, "A"), ("second_line_of_address", 362, 32, "A"),
    ("city", 394, 20, "A"), ("state", 414, 2, "A"), ("postal_code", 416, 9, "A"),
    ("address_indicator", 425, 1, "A"), ("residence_code", 426, 1, "A"),
)  # fmt: skip
BASE_LENGTH = BASE[-1].end

K1 = _layout(
    ("segment_identifier", 1, 2, "A"), ("original_creditor_name", 3, 30, "A"),
    ("creditor_classification", 33, 2, "N"),
)  # fmt: skip
K1_LENGTH = K1[-1].end

#: Statuses the trailer totals, in the order of their fields.
TRAILER_STATUSES = (
    "DA", "05", "11", "13", "61", "62", "63", "64", "65", "71", "78", "80", "82", "83", "84",
    "88", "89", "93", "94", "95", "96", "97",
)  # fmt: skip
TRAILER = _layout(
    ("record_descriptor_word", 1, 4, "N"), ("record_identifier", 5, 7, "A"),
    ("total_base_records", 12, 9, "N"), ("reserved_1", 21, 9, "A"),
    ("total_status_df", 30, 9, "N"), ("total_j1_segments", 39, 9, "N"),
    ("total_j2_segments", 48, 9, "N"), ("block_count", 57, 9, "N"),
    *((f"total_status_{code.lower()}", 66 + 9 * i, 9, "N")
      for i, code in enumerate(TRAILER_STATUSES)),
    ("total_ecoa_z", 264, 9, "N"), ("total_employment_segments", 273, 9, "N"),
    ("total_original_creditor_segments", 282, 9, "N"), ("total_purchased_to_segments", 291, 9, "N"),
    ("total_mortgage_segments", 300, 9, "N"), ("total_payment_information_segments", 309, 9, "N"),
    ("total_change_segments", 318, 9, "N"), ("total_ssn_all", 327, 9, "N"),
    ("total_ssn_base", 336, 9, "N"), ("total_ssn_j1", 345, 9, "N"), ("total_ssn_j2", 354, 9, "N"),
    ("total_birth_dates_all", 363, 9, "N"), ("total_birth_dates_base", 372, 9, "N"),
    ("total_birth_dates_j1", 381, 9, "N"), ("total_birth_dates_j2", 390, 9, "N"),
    ("total_telephones_all", 399, 9, "N"), ("reserved_2", 408, 19, "A"),
)  # fmt: skip


def _ascii(text: str) -> str:
    if text.isascii() and text.isprintable():  # the common case, without the NFKD pass
        return text.upper()
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c if " " <= c <= "~" else " " for c in folded).upper()


def _encode(segment: str, f: Field, value: Any) -> str:
    if value is None or value == "":
        return " " * f.length if f.kind == "A" else "0" * f.length
    if f.kind == "A":
        return _ascii(str(value))[: f.length].ljust(f.length)
    if f.kind == "D":
        return f"{value:%m%d%Y}"
    if f.kind == "T":
        return f"{value.astimezone(UTC):%m%d%Y%H%M%S}"
    number = int(value)  # int() truncates money to whole units
    text = str(number)
    if number < 0 or len(text) > f.length:
        raise ValueError(f"metro2 {segment}.{f.name}: {number} does not fit {f.length} digits")
    return text.zfill(f.length)


class _Zeros:
    """Formats as the zero-filled field a missing date or time stamp is."""

    def __format__(self, spec: str) -> str:
        return "0" * (14 if "H" in spec else 8)


_ZEROS = _Zeros()


class _Day:
    """A date formatted as MMDDYYYY without strftime (the writer's hottest format)."""

    __slots__ = ("day",)

    def __init__(self, day: date) -> None:
        self.day = day

    def __format__(self, spec: str) -> str:
        d = self.day
        return f"{d.month:02d}{d.day:02d}{d.year:04d}"


_TEMPLATES: dict[int, str] = {}  # by id(): hashing a layout hashes every field


def _template(layout: tuple[Field, ...]) -> str:
    """One format string for the whole segment: a file of 100,000 records is written with one
    ``format_map`` per record rather than a call per field."""
    found = _TEMPLATES.get(id(layout))
    if found is None:
        spec = {"A": "<{n}.{n}", "N": "0>{n}", "D": "%m%d%Y", "T": "%m%d%Y%H%M%S"}
        found = "".join("{" + f"{f.name}:" + spec[f.kind].format(n=f.length) + "}" for f in layout)
        _TEMPLATES[id(layout)] = found
    return found


def _defaults(layout: tuple[Field, ...]) -> tuple[dict[str, Any], dict[str, Field]]:
    """Every field blank or zero, and the fields by name (built once per layout)."""
    found = _DEFAULTS.get(id(layout))
    if found is None:
        blank = {f.name: "" if f.kind == "A" else 0 if f.kind == "N" else _ZEROS for f in layout}
        found = _DEFAULTS[id(layout)] = (blank, {f.name: f for f in layout})
    return found


_DEFAULTS: dict[int, tuple[dict[str, Any], dict[str, Field]]] = {}


def write_segment(segment: str, layout: tuple[Field, ...], values: dict[str, Any]) -> str:
    """The fixed-width text of one segment; fields not in ``values`` are blank or zero."""
    blank, fields = _defaults(layout)
    args = blank.copy()
    for name, value in values.items():
        if value is None or value == "":
            continue
        f = fields[name]
        kind = f.kind
        if kind == "A":
            args[name] = _ascii(value if type(value) is str else str(value))
        elif kind == "N":
            number = args[name] = int(value)  # int() truncates money to whole units
            if number < 0:
                _encode(segment, f, value)  # raises, naming the field
        elif kind == "D":
            args[name] = _Day(value)
        else:
            args[name] = value.astimezone(UTC)
    text = _template(layout).format_map(args)
    if len(text) != layout[-1].end:  # a number wider than its field
        return "".join([_encode(segment, f, values.get(f.name)) for f in layout])  # raises
    return text


def alpha(value: str | None) -> str:
    """An alphanumeric value ready for :func:`format_segment`."""
    return "" if not value else _ascii(value)


def whole(value: Any) -> int:
    """A numeric value ready for :func:`format_segment` (money: cents truncated)."""
    number = 0 if value is None else int(value)
    if number < 0:
        raise ValueError(f"metro2: {value} is negative; numeric fields are unsigned")
    return number


def day(value: date | None) -> Any:
    """A date ready for :func:`format_segment`."""
    return _ZEROS if value is None else _Day(value)


def stamp(value: datetime | None) -> Any:
    """A time stamp ready for :func:`format_segment`."""
    return _ZEROS if value is None else value.astimezone(UTC)


def format_segment(segment: str, layout: tuple[Field, ...], ready: dict[str, Any]) -> str:
    """Like :func:`write_segment` for values already converted by :func:`alpha`,
    :func:`whole`, :func:`day` and :func:`stamp`: the writer's path for every record."""
    blank, fields = _defaults(layout)
    args = blank.copy()
    args.update(ready)
    text = _template(layout).format_map(args)
    if len(text) != layout[-1].end:  # a number wider than its field: name it
        for name, value in ready.items():
            f = fields[name]
            if f.kind == "N":
                _encode(segment, f, value)
    return text


def _decode(segment: str, f: Field, text: str) -> Any:
    if f.kind == "A":
        return text.rstrip(" ")
    if not text.isdigit():
        raise ValueError(f"metro2 {segment}.{f.name} at {f.start}-{f.end}: {text!r} is not digits")
    if f.kind == "N":
        return int(text)
    if set(text) == {"0"}:
        return None
    if f.kind == "D":
        return date(int(text[4:8]), int(text[0:2]), int(text[2:4]))
    return datetime.strptime(text, "%m%d%Y%H%M%S").replace(tzinfo=UTC)


def parse_segment(segment: str, layout: tuple[Field, ...], text: str) -> dict[str, Any]:
    """Field name -> value of one segment (the inverse of :func:`write_segment`)."""
    expected = layout[-1].end
    if len(text) != expected:
        raise ValueError(f"metro2 {segment}: {len(text)} characters, expected {expected}")
    return {f.name: _decode(segment, f, text[f.start - 1 : f.end]) for f in layout}
