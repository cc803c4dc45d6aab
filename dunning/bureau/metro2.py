"""A Metro 2 file (character format) from a cycle's records, and its parser.

The file is a Header record, one data record per account, and a Trailer record, each on its
own line (LF). A data record is the 426-byte Base Segment, followed by a K1 segment (original
creditor) for a third-party collector's account; its record descriptor word (the first four
bytes) is the record's length without the line end: 426, or 460 with K1. No J1/J2 segment is
written: the book has no associated consumers. The trailer counts the base records, the
statuses and the K1 segments.

:class:`Metro2Writer` streams: records go out as they come, only the counts are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from dunning.bureau.metro2_layout import (
    BASE,
    BASE_LENGTH,
    HEADER,
    K1,
    K1_LENGTH,
    TRAILER,
    TRAILER_STATUSES,
    alpha,
    day,
    format_segment,
    parse_segment,
    stamp,
    whole,
    write_segment,
)
from dunning.bureau.records import BureauRecord
from dunning.bureau.status import ACCOUNT_TYPES_METRO2

__all__ = ["Furnisher", "Metro2File", "Metro2Writer", "base_values", "parse_metro2", "write_metro2"]

#: K1 creditor classification 12: financial.
_FINANCIAL = 12


@dataclass(frozen=True, slots=True)
class Furnisher:
    """Who reports: the header's reporter and the base segments' identification number."""

    identification_number: str
    reporter_name: str
    reporter_address: str = ""
    reporter_telephone: int = 0
    software_vendor_name: str = "DUNNING"
    software_version: str = "1"


@dataclass(frozen=True, slots=True)
class Metro2File:
    """A parsed file: header, each data record (base + optional K1) and trailer, as values."""

    header: dict[str, Any]
    records: list[tuple[dict[str, Any], dict[str, Any] | None]]
    trailer: dict[str, Any]


def base_values(record: BureauRecord, furnisher: Furnisher) -> dict[str, Any]:
    """The Base Segment's fields for ``record``, converted for :func:`format_segment`."""
    portfolio, account_type = ACCOUNT_TYPES_METRO2[record.account_type]
    if record.collector_role == "third_party":
        portfolio, account_type = ACCOUNT_TYPES_METRO2["collection"]
    lines = record.address_lines
    return {
        "processing_indicator": 1,
        "time_stamp": stamp(record.furnished_at),
        "identification_number": alpha(furnisher.identification_number),
        "consumer_account_number": alpha(record.account_id),
        "portfolio_type": portfolio,
        "account_type": account_type,
        "date_opened": day(record.date_opened),
        "credit_limit": whole(record.credit_limit),
        "highest_credit": whole(record.principal),
        "terms_duration": alpha(record.terms),
        "terms_frequency": "" if record.terms in ("REV", "LOC") else "M",
        "account_status": record.status_code,
        "payment_rating": record.payment_rating,
        "payment_history_profile": record.payment_history,
        "compliance_condition_code": record.compliance_condition,
        "current_balance": whole(record.current_balance),
        "amount_past_due": whole(record.amount_past_due),
        "original_charge_off_amount": whole(record.charge_off_amount),
        "date_of_account_information": day(record.as_of),
        "date_of_first_delinquency": day(record.first_delinquency),
        "date_closed": day(record.date_closed),
        "date_of_last_payment": day(record.last_payment_date),
        "surname": alpha(record.surname),
        "first_name": alpha(record.first_name),
        "ecoa_code": "1",  # individual account
        "country_code": alpha(record.country),
        "first_line_of_address": alpha(lines[0] if lines else ""),
        "second_line_of_address": alpha(" ".join(lines[1:])),
        "city": alpha(record.city),
        "state": alpha(record.region),
        "postal_code": alpha(record.postal_code),
    }


def _with_rdw(text: str) -> str:
    return f"{len(text):04d}{text[4:]}"


class Metro2Writer:
    """Writes one cycle's file to ``out``: :meth:`begin`, :meth:`add` per record, :meth:`end`."""

    def __init__(self, out: TextIO, furnisher: Furnisher, cycle: str) -> None:
        self.out = out
        self.furnisher = furnisher
        self.cycle = cycle
        self.statuses: Counter[str] = Counter()
        self.bases = 0
        self.k1 = 0

    def begin(self, activity_date: date) -> None:
        """The header; ``activity_date`` dates the file (the cycle's last day: reproducible)."""
        f = self.furnisher
        values = {
            "record_identifier": "HEADER",
            "activity_date": activity_date,
            "date_created": activity_date,
            "reporter_name": f.reporter_name,
            "reporter_address": f.reporter_address,
            "reporter_telephone": f.reporter_telephone,
            "software_vendor_name": f.software_vendor_name,
            "software_version": f.software_version,
        }
        self.out.write(_with_rdw(write_segment("header", HEADER, values)) + "\n")

    def add(self, record: BureauRecord) -> None:
        text = format_segment("base", BASE, base_values(record, self.furnisher))
        if record.collector_role == "third_party":
            text += write_segment("k1", K1, {
                "segment_identifier": "K1",
                "original_creditor_name": record.original_creditor,
                "creditor_classification": _FINANCIAL,
            })  # fmt: skip
            self.k1 += 1
        self.out.write(_with_rdw(text) + "\n")
        self.statuses[record.status_code] += 1
        self.bases += 1

    def end(self) -> None:
        values: dict[str, Any] = {
            "record_identifier": "TRAILER",
            "total_base_records": self.bases,
            "total_status_df": self.statuses["DF"],
            "block_count": self.bases + 2,
            "total_original_creditor_segments": self.k1,
        }
        for code in TRAILER_STATUSES:
            values[f"total_status_{code.lower()}"] = self.statuses[code]
        self.out.write(_with_rdw(write_segment("trailer", TRAILER, values)) + "\n")


def write_metro2(
    out: TextIO, records: Iterable[BureauRecord], furnisher: Furnisher, cycle: str,
    activity_date: date,
) -> Metro2Writer:  # fmt: skip
    """Write a whole file; returns the writer with its counts."""
    writer = Metro2Writer(out, furnisher, cycle)
    writer.begin(activity_date)
    for record in records:
        writer.add(record)
    writer.end()
    return writer


def _check_rdw(text: str, line: int) -> None:
    if not text[:4].isdigit() or int(text[:4]) != len(text):
        raise ValueError(f"metro2 line {line}: record descriptor word {text[:4]!r} "
                         f"but the record has {len(text)} characters")  # fmt: skip


def parse_metro2(text: str) -> Metro2File:
    """Parse a file :class:`Metro2Writer` wrote; raises ValueError naming the line at fault."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        raise ValueError("metro2: a file needs at least a header and a trailer")
    for number, line in enumerate(lines, 1):
        _check_rdw(line, number)
    header = parse_segment("header", HEADER, lines[0])
    trailer = parse_segment("trailer", TRAILER, lines[-1])
    records: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for number, line in enumerate(lines[1:-1], 2):
        if len(line) not in (BASE_LENGTH, BASE_LENGTH + K1_LENGTH):
            raise ValueError(f"metro2 line {number}: {len(line)} characters is no data record")
        base = parse_segment("base", BASE, line[:BASE_LENGTH])
        k1 = parse_segment("k1", K1, line[BASE_LENGTH:]) if len(line) > BASE_LENGTH else None
        records.append((base, k1))
    return Metro2File(header, records, trailer)
