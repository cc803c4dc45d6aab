"""A visit report as a field-service system sends it: JSON, checked field by field.

    {"event_id": "fsm-77", "task_id": "<intent id>", "outcome": "met_debtor",
     "arrived_at": "2026-11-28T10:05:00+08:00", "departed_at": "2026-11-28T10:30:00+08:00",
     "collectors": ["C-017", "C-021"], "id_shown": true, "entered": false,
     "entry_consent": false, "people": ["debtor"],
     "recording": {"sha256": "9f86...", "started_at": "...", "ended_at": "..."},
     "promise": {"date": "2026-12-05", "amount": "500.00"},
     "at_workplace": false, "employer_prohibits": false, "notice_mentions_debt": false}

``recording``, ``promise`` and the last three flags are optional; unknown keys are refused.
docs/visits.md, "The field-service webhook".
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from dunning.ledger.visit_store import VisitReport
from dunning.visits.outcomes import VisitInputError

__all__ = ["parse_report"]

_KEYS = frozenset({
    "event_id", "task_id", "outcome", "arrived_at", "departed_at", "collectors", "id_shown",
    "entered", "entry_consent", "people", "recording", "promise", "at_workplace",
    "employer_prohibits", "notice_mentions_debt",
})  # fmt: skip
_FLAGS = ("at_workplace", "employer_prohibits", "notice_mentions_debt")


def parse_report(body: bytes, *, source: str = "webhook") -> VisitReport:
    """The report in ``body``; raises VisitInputError naming the first field at fault."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise VisitInputError("body: not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise VisitInputError("body: expected a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise VisitInputError(f"unknown field(s) {', '.join(unknown)}")
    recording = _object(data, "recording")
    promise = _object(data, "promise")
    return VisitReport(
        task_id=_text(data, "task_id"),
        event_id=_text(data, "event_id"),
        outcome=_text(data, "outcome"),
        arrived_at=_instant(data, "arrived_at"),
        departed_at=_instant(data, "departed_at"),
        collectors=_texts(data, "collectors"),
        id_shown=_flag(data, "id_shown"),
        entered=_flag(data, "entered"),
        entry_consent=_flag(data, "entry_consent"),
        people=_texts(data, "people"),
        recording_sha256=_text(recording, "sha256", "recording.") if recording else None,
        recording_started_at=_instant(recording, "started_at", "recording.") if recording else None,
        recording_ended_at=_instant(recording, "ended_at", "recording.") if recording else None,
        promise_date=_day(promise, "date", "promise.") if promise else None,
        promise_amount=_text(promise, "amount", "promise.") if promise else None,
        detail={flag: _flag(data, flag, default=False) for flag in _FLAGS},
        source=source,
    )


def _object(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise VisitInputError(f"{key}: expected an object")
    return value


def _text(data: dict[str, Any], key: str, prefix: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise VisitInputError(
            f"{prefix}{key}: expected a non-empty string of at most 128 characters"
        )
    return value.strip()


def _texts(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise VisitInputError(f"{key}: expected a list of non-empty strings")
    return tuple(value)


def _flag(data: dict[str, Any], key: str, *, default: bool | None = None) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise VisitInputError(f"{key}: expected true or false")
    return value


def _instant(data: dict[str, Any], key: str, prefix: str = "") -> datetime:
    text = _text(data, key, prefix)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise VisitInputError(f"{prefix}{key}: {text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise VisitInputError(f"{prefix}{key}: {text!r} needs an offset or Z")
    return value


def _day(data: dict[str, Any], key: str, prefix: str = "") -> date:
    text = _text(data, key, prefix)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise VisitInputError(f"{prefix}{key}: {text!r} is not a date like 2026-12-05") from None
