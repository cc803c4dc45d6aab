"""Routing data of the memory broker: stored messages, exchanges with bindings, queues.

Topic matching follows AMQP: words split on ``.``, ``*`` matches one word, ``#`` zero or more.
``add_death`` builds the ``x-death`` list the way RabbitMQ does: newest first, one entry per
(queue, reason) whose ``count`` grows when the same pair happens again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dunning.broker.base import Delivery

__all__ = ["ExchangeState", "QueueState", "StoredMessage", "add_death", "topic_matches"]


@dataclass
class StoredMessage:
    body: bytes
    headers: dict[str, Any]
    exchange: str
    routing_key: str
    message_id: str | None
    redelivered: bool = False
    delivery_count: int = 0
    expires_at: float | None = None  # time.monotonic() seconds

    def copy(self) -> StoredMessage:
        """A fresh copy for one queue (fan-out must not share mutable headers)."""
        return StoredMessage(
            self.body, dict(self.headers), self.exchange, self.routing_key, self.message_id
        )

    def delivery(self, queue: str, tag: int, generation: int) -> Delivery:
        return Delivery(
            queue=queue,
            routing_key=self.routing_key,
            body=self.body,
            headers=dict(self.headers),
            redelivered=self.redelivered,
            delivery_tag=tag,
            generation=generation,
            message_id=self.message_id,
            exchange=self.exchange,
        )


def topic_matches(pattern: str, routing_key: str) -> bool:
    return _match(pattern.split("."), routing_key.split(".") if routing_key else [])


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])


@dataclass
class ExchangeState:
    name: str
    type: str
    arguments: dict[str, Any]
    bindings: set[tuple[str, str]] = field(default_factory=set)  # (queue, routing key)

    def bind(self, queue: str, routing_key: str) -> None:
        self.bindings.add((queue, routing_key))

    def match(self, routing_key: str) -> set[str]:
        if self.type == "fanout":
            return {queue for queue, _ in self.bindings}
        if self.type == "topic":
            return {q for q, key in self.bindings if topic_matches(key, routing_key)}
        return {queue for queue, key in self.bindings if key == routing_key}


@dataclass
class QueueState:
    name: str
    arguments: dict[str, Any]
    ready: deque[StoredMessage] = field(default_factory=deque)

    @property
    def is_quorum(self) -> bool:
        return self.arguments.get("x-queue-type") == "quorum"


def add_death(message: StoredMessage, queue: str, reason: str, now: datetime) -> dict[str, Any]:
    """The message's headers with this death recorded in ``x-death`` (RabbitMQ's shape)."""
    headers = dict(message.headers)
    deaths: list[dict[str, Any]] = [dict(d) for d in headers.get("x-death", [])]
    entry = next((d for d in deaths if d["queue"] == queue and d["reason"] == reason), None)
    if entry is not None:
        deaths.remove(entry)
        entry["count"] = int(entry["count"]) + 1
        entry["time"] = now
    else:
        entry = {
            "count": 1,
            "reason": reason,
            "queue": queue,
            "time": now,
            "exchange": message.exchange,
            "routing-keys": [message.routing_key],
        }
    headers["x-death"] = [entry, *deaths]
    headers.setdefault("x-first-death-exchange", message.exchange)
    headers.setdefault("x-first-death-queue", queue)
    headers.setdefault("x-first-death-reason", reason)
    return headers
