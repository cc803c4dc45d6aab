"""The asyncio worker face of the in-process broker (:class:`MemoryBroker`)."""

from __future__ import annotations

import asyncio

import structlog

from dunning.broker.base import Delivery, Handler, OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.memory.session import Consumer, Session
from dunning.broker.topology import Topology
from dunning.errors import BrokerConnectionError

__all__ = ["MemoryClient"]

log = structlog.get_logger(__name__)


class MemoryClient:
    """The asyncio :class:`~dunning.broker.base.AsyncBroker` face of a MemoryBroker."""

    def __init__(self, server: MemoryBroker) -> None:
        self._server = server
        self.session = Session(server)
        self._closed: asyncio.Future[None] | None = None
        self._consumers: list[Consumer] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        with self._server.lock:
            self.session.generation += 1
            self.session.unacked.clear()
            self.session.closed = False
        self._closed = asyncio.get_running_loop().create_future()

    def _require_open(self) -> asyncio.Future[None]:
        if self._closed is None or self._closed.done():
            raise BrokerConnectionError("not connected")
        return self._closed

    async def declare(self, topology: Topology) -> None:
        self._require_open()
        self._server.declare(topology)

    async def consume(self, queue: str, *, prefetch: int, handler: Handler) -> None:
        self._require_open()
        consumer = Consumer(self, queue, max(prefetch, 1), handler, asyncio.get_running_loop())
        self._consumers.append(consumer)
        self._server.add_consumer(consumer)

    def start_handler(self, consumer: Consumer, delivery: Delivery) -> None:
        """Runs on this client's loop: one task per delivered message."""
        if delivery.generation != self.session.generation:
            return
        task = asyncio.get_running_loop().create_task(_run(consumer.handler, delivery))
        self._tasks.add(task)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handler failed; message stays unacked", error=repr(task.exception()))

    async def cancel(self) -> None:
        self._server.remove_consumers(self)
        for consumer in self._consumers:
            consumer.in_hand.clear()
        self._consumers.clear()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._require_open() if self._closed is None else self._closed)

    def _settle(self, delivery: Delivery, *, ack: bool, requeue: bool) -> None:
        with self._server.lock:
            tag = self.session.settle(delivery, ack=ack, requeue=requeue)
            if tag is None:
                return
            for consumer in self._consumers:
                consumer.in_hand.discard(tag)
            self._server.dispatch_all_locked()

    async def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, ack=True, requeue=False)

    async def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        self._settle(delivery, ack=False, requeue=requeue)

    async def publish(self, message: OutboundMessage) -> None:
        self._require_open()
        self._server.publish(message, mandatory=True)

    def _drop(self, error: BaseException | None) -> None:
        self._server.remove_consumers(self)
        self._consumers.clear()
        with self._server.lock:
            self.session.return_all_locked()
            self.session.closed = True
        if self._closed is not None and not self._closed.done():
            if error is None:
                self._closed.set_result(None)
            else:
                self._closed.set_exception(error)

    def simulate_connection_loss(self) -> None:
        """Test hook: drop the link as a network failure would; unacked messages come back."""
        self._drop(BrokerConnectionError("connection lost (simulated)"))

    async def close(self) -> None:
        self._drop(None)


async def _run(handler: Handler, delivery: Delivery) -> None:
    await handler(delivery)
