"""What the rest of dunning needs from a message broker, and nothing more.

Two faces: :class:`Publisher` (synchronous, for the evaluator and admin tools: publish with
confirms, inspect and move dead letters) and :class:`AsyncBroker` (the worker side: consume
with prefetch, ack, reject, publish delays and dead letters with confirms). Implementations:
``rabbitmq.py`` (pika asyncio for workers, kombu for publishers) and ``memory/`` (in-process,
same semantics). No pika or kombu type or exception crosses this boundary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dunning.broker.topology import Topology

__all__ = ["AsyncBroker", "Delivery", "Handler", "OutboundMessage", "Publisher"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    exchange: str
    routing_key: str
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a consumer; ack or reject it through the broker that delivered it.

    ``generation`` identifies the connection it came on: after a reconnect, acks for older
    generations are dropped (the broker redelivers those messages; the ledger makes that safe).
    """

    queue: str
    routing_key: str
    body: bytes
    headers: Mapping[str, Any]
    redelivered: bool
    delivery_tag: int
    generation: int
    message_id: str | None = None
    exchange: str = ""


Handler = Callable[[Delivery], Awaitable[None]]


class Publisher(Protocol):
    def declare(self, topology: Topology) -> None:
        """Declare every exchange, queue and binding; raises TopologyMismatchError on conflict."""
        ...

    def publish_many(self, messages: Iterable[OutboundMessage]) -> int:
        """Publish persistent, mandatory messages and wait for every confirm.

        Returns the count; raises PublishError if any was nacked or returned unroutable.
        """
        ...

    def get(self, queue: str) -> Delivery | None:
        """Fetch one message without auto-ack (admin tools: DLQ list/replay); None when empty."""
        ...

    def ack(self, delivery: Delivery) -> None: ...

    def reject(self, delivery: Delivery, *, requeue: bool) -> None: ...

    def queue_depth(self, queue: str) -> int:
        """Ready messages in ``queue`` (a passive declare)."""
        ...

    def close(self) -> None: ...


class AsyncBroker(Protocol):
    async def connect(self) -> None:
        """Open the connection; raises BrokerConnectionError."""
        ...

    async def declare(self, topology: Topology) -> None: ...

    async def consume(self, queue: str, *, prefetch: int, handler: Handler) -> None:
        """Start delivering ``queue`` to ``handler``, at most ``prefetch`` unacked at a time.

        ``handler`` is awaited as its own task per message; it must ack or reject.
        """
        ...

    async def cancel(self) -> None:
        """Stop receiving new messages; deliveries in hand stay valid for ack."""
        ...

    async def wait_closed(self) -> None:
        """Return when ``close()`` was called; raise BrokerConnectionError if the link was lost."""
        ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def reject(self, delivery: Delivery, *, requeue: bool) -> None: ...

    async def publish(self, message: OutboundMessage) -> None:
        """Publish persistent + mandatory and wait for the confirm; raises PublishError."""
        ...

    async def close(self) -> None: ...
