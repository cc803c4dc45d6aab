"""What the memory broker's connections hold: a consumer's registration and a session's unacked
messages. Shared by the server (which delivers into them) and the client (which owns them)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from dunning.broker.base import Delivery, Handler
from dunning.broker.memory.routing import StoredMessage
from dunning.errors import BrokerError

if TYPE_CHECKING:
    from dunning.broker.memory.client import MemoryClient
    from dunning.broker.memory.server import MemoryBroker

__all__ = ["Consumer", "Session", "Unacked"]

log = structlog.get_logger(__name__)


@dataclass
class Unacked:
    queue: str
    message: StoredMessage


@dataclass
class Consumer:
    client: MemoryClient
    queue: str
    prefetch: int
    handler: Handler
    loop: asyncio.AbstractEventLoop
    in_hand: set[int] = field(default_factory=set)


class Session:
    """What a connection owns: its generation, delivery tags and unacked messages."""

    def __init__(self, server: MemoryBroker) -> None:
        self._server = server
        self.generation = 0
        self.tags = itertools.count(1)
        self.unacked: dict[int, Unacked] = {}
        self.closed = False

    def take(self, queue: str, message: StoredMessage) -> Delivery:
        tag = next(self.tags)
        self.unacked[tag] = Unacked(queue, message)
        return message.delivery(queue, tag, self.generation)

    def settle(self, delivery: Delivery, *, ack: bool, requeue: bool) -> int | None:
        """Ack or reject; returns the tag settled, None when stale (older generation)."""
        if delivery.generation != self.generation or self.closed:
            log.debug("stale settle dropped", queue=delivery.queue, tag=delivery.delivery_tag)
            return None
        held = self.unacked.pop(delivery.delivery_tag, None)
        if held is None:
            raise BrokerError(f"unknown delivery tag {delivery.delivery_tag} on {delivery.queue}")
        if not ack:
            if requeue:
                self._server.requeue_locked(held.queue, [held.message])
            else:
                self._server.dead_letter_locked(held.queue, held.message, "rejected")
        return delivery.delivery_tag

    def return_all_locked(self) -> None:
        """Put every unacked message back (connection gone): redelivered, count + 1."""
        by_queue: dict[str, list[StoredMessage]] = {}
        for tag in sorted(self.unacked):
            held = self.unacked[tag]
            by_queue.setdefault(held.queue, []).append(held.message)
        self.unacked.clear()
        for queue, messages in by_queue.items():
            self._server.requeue_locked(queue, messages)
