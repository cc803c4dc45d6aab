"""Email-provider and print-vendor events: the documented JSON, checked before anything is stored.

A batch is decoded and every event checked against what the ledger can hold (lengths of the
reference, status and intent id; no NUL character, which PostgreSQL text refuses) before the
first one is stored, so a bad event refuses the whole batch with a 400 naming it, and a retry
of the corrected batch finds nothing half-written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dunning.errors import DecodeError
from dunning.intents import Channel
from dunning.ledger.schema import intents, receipts
from dunning.receipts import statuses
from dunning.receipts.limits import MAX_EVENTS, MAX_JSON_DEPTH, RefusedError, json_depth_within

__all__ = [
    "INTENT_ID_MAX",
    "PROVIDER_REF_MAX",
    "STATUS_MAX",
    "ProviderEvent",
    "checked_text",
    "column_length",
    "decode_events",
    "parse_events",
]


def column_length(column: Any) -> int:
    """The declared length of a String column of the ledger."""
    return int(column.type.length)


#: What the ledger's columns hold; a longer value is refused with a 400, never truncated.
PROVIDER_REF_MAX = column_length(receipts.c.provider_ref)
STATUS_MAX = column_length(receipts.c.status)
INTENT_ID_MAX = column_length(intents.c.intent_id)

#: Field names accepted for an event's provider reference, per source.
_REF_FIELDS = {
    Channel.EMAIL: ("message_id", "provider_ref"),
    Channel.LETTER: ("file", "provider_ref"),
}


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One email-provider or print-vendor event, decoded from the documented JSON shape."""

    channel: Channel
    provider_ref: str
    status: str
    intent_id: str | None
    raw: Mapping[str, Any]


def checked_text(value: str, field: str, max_length: int) -> str:
    """``value`` when the ledger can store it; DecodeError naming ``field`` otherwise."""
    if "\x00" in value:
        raise DecodeError("holds a NUL character", field=field)
    if len(value) > max_length:
        raise DecodeError(f"is {len(value)} characters, more than {max_length}", field=field)
    return value


def decode_events(channel: Channel, payload: Any) -> list[ProviderEvent]:
    """Events from the documented JSON: one event object, or ``{"events": [...]}``.

    Raises DecodeError naming what is missing or what the ledger could not hold.
    """
    items = (
        payload.get("events") if isinstance(payload, dict) and "events" in payload else [payload]
    )
    if not isinstance(items, list):
        raise DecodeError("events must be a list", field="events")
    if len(items) > MAX_EVENTS:
        raise RefusedError(413, f"batch has {len(items)} events, more than {MAX_EVENTS}")
    events: list[ProviderEvent] = []
    for index, item in enumerate(items):
        where = f"events[{index}]"
        if not isinstance(item, dict):
            raise DecodeError("an event must be an object", field=where)
        ref = next((str(item[k]) for k in _REF_FIELDS[channel] if item.get(k)), None)
        status = item.get("event") or item.get("status")
        if ref is None:
            raise DecodeError(f"needs one of {_REF_FIELDS[channel]}", field=where)
        if not isinstance(status, str) or not status:
            raise DecodeError("needs an event name", field=f"{where}.event")
        if channel is Channel.EMAIL and status == "bounced" and item.get("bounce_type") == "soft":
            status = "deferred"  # a soft bounce will be retried by the sending server
        raw_intent = item.get("intent_id")
        intent_id = str(raw_intent) if raw_intent else None
        checked_text(ref, f"{where}.{_REF_FIELDS[channel][0]}", PROVIDER_REF_MAX)
        checked_text(statuses.normalise(status), f"{where}.event", STATUS_MAX)
        if intent_id is not None:
            checked_text(intent_id, f"{where}.intent_id", INTENT_ID_MAX)
        events.append(ProviderEvent(channel, ref, status, intent_id, item))
    return events


def parse_events(channel: Channel, body: bytes) -> list[ProviderEvent]:
    """Decode a signed body into events; RefusedError (400, 413) or DecodeError when unfit.

    CPU-bound on a body of up to a megabyte: the webhook runs it in a thread.
    """
    try:
        payload = json.loads(body)
    except RecursionError:
        raise RefusedError(400, "JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RefusedError(400, f"body is not JSON: {exc}") from None
    if not json_depth_within(payload):
        raise RefusedError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return decode_events(channel, payload)
