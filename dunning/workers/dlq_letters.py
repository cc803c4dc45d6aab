"""One dead letter, decoded as far as it decodes, and the filter that selects dead letters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dunning.broker.base import Delivery
from dunning.errors import DecodeError
from dunning.intents import Channel, ContactIntent, decode_intent
from dunning.workers import headers as h

__all__ = ["DeadLetter", "DeadLetterFilter", "describe"]


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter queue, decoded as far as it decodes."""

    channel: str
    body: bytes
    headers: Mapping[str, Any]
    message_id: str | None
    intent: ContactIntent | None
    decode_error: str | None

    @classmethod
    def from_delivery(cls, channel: str, delivery: Delivery) -> DeadLetter:
        try:
            intent: ContactIntent | None = decode_intent(delivery.body)
            error = None
        except DecodeError as exc:
            intent, error = None, str(exc)
        return cls(channel, delivery.body, delivery.headers, delivery.message_id, intent, error)

    @property
    def intent_id(self) -> str | None:
        return self.intent.intent_id if self.intent is not None else self.message_id

    @property
    def deaths(self) -> list[Mapping[str, Any]]:
        raw = self.headers.get("x-death") or []
        return [d for d in raw if isinstance(d, Mapping)]

    def _ours_or_broker(self, header: str, broker_prefix: str) -> str:
        """Our header when set, else the broker's reason of the newest x-death."""
        value = self.headers.get(header)
        if value:
            return str(value)
        deaths = self.deaths
        return f"{broker_prefix}{deaths[0].get('reason')}" if deaths else "unknown"

    @property
    def reason(self) -> str:
        return self._ours_or_broker(h.REASON, "broker: ")

    @property
    def detail(self) -> str:
        """What varied for this message (an exception's text); empty when none was kept."""
        return str(self.headers.get(h.ERROR_DETAIL) or "")

    @property
    def error_class(self) -> str:
        return self._ours_or_broker(h.ERROR_CLASS, "x-death:")

    @property
    def died_at(self) -> datetime | None:
        """When it last died: our header, else the newest x-death time."""
        value = _instant(self.headers.get(h.LAST_FAILURE_AT))
        if value is None and self.deaths:
            value = _instant(self.deaths[0].get("time"))
        return value

    @property
    def replay_count(self) -> int:
        try:
            return int(self.headers.get(h.REPLAY_COUNT) or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def route(self) -> str:
        """Routing key to replay with: the intent's own channel when it decodes."""
        return self.intent.channel.value if self.intent is not None else self.channel


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operation touches; every given criterion must hold."""

    channels: tuple[Channel, ...] = tuple(Channel)
    reason: str | None = None  # case-insensitive substring of the reason, error class or detail
    intent_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reason is not None:
            wanted = self.reason.lower()
            said = (letter.reason, letter.error_class, letter.detail)
            if not any(wanted in text.lower() for text in said):
                return False
        if self.intent_id is not None and self.intent_id not in (
            letter.intent_id,
            letter.message_id,
        ):
            return False
        if self.since is not None or self.until is not None:
            died = letter.died_at
            if died is None:
                return False
            if self.since is not None and died < self.since:
                return False
            if self.until is not None and died >= self.until:
                return False
        return True


def describe(letter: DeadLetter) -> dict[str, Any]:
    """A JSON-able view of one dead letter for ``dunning dlq show`` (body decoded if it can be)."""
    body: Any
    try:
        body = json.loads(letter.body)
    except (ValueError, UnicodeDecodeError):
        body = f"<{len(letter.body)} bytes, not JSON>"
    return {
        "channel": letter.channel,
        "intent_id": letter.intent_id,
        "error_class": letter.error_class,
        "reason": letter.reason,
        "decode_error": letter.decode_error,
        "died_at": letter.died_at,
        "replay_count": letter.replay_count,
        "headers": {k: v for k, v in letter.headers.items() if k != "x-death"},
        "x_death": letter.deaths,
        "body": body,
    }


def _instant(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None
