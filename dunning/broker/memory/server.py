"""An in-process broker with RabbitMQ's semantics, for unit tests and the embedded demo.

One :class:`MemoryBroker` is the "server": it holds the exchanges and queues declared from a
:class:`~dunning.broker.topology.Topology` and routes like RabbitMQ (direct, fanout and topic
exchanges, ``alternate-exchange``, ``x-message-ttl`` and ``x-delivery-limit`` dead-lettering to
``x-dead-letter-exchange`` with the routing key kept (a quorum queue without a limit has
RabbitMQ 4's default of 20), ``x-max-length`` with ``drop-head``, and
an ``x-death`` list shaped like RabbitMQ's). ``.publisher()`` is the synchronous face,
``.client()`` the asyncio worker face; several clients may consume one queue (round-robin).

Threads: the publisher may run in another thread than the consumers' event loop. Every state
change happens under one lock; handlers are started on each client's own loop through
``call_soon_threadsafe``. Queue TTLs expire on the loop of a connected client (``call_later``)
and, lazily, on every operation, so a broker used without any loop still honours them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from dunning.broker.base import Delivery, OutboundMessage
from dunning.broker.memory.routing import ExchangeState, QueueState, StoredMessage, add_death
from dunning.broker.memory.session import Consumer, Session
from dunning.broker.topology import Topology
from dunning.errors import BrokerError, PublishError, TopologyMismatchError

if TYPE_CHECKING:
    from dunning.broker.memory.client import MemoryClient

__all__ = ["QUORUM_DEFAULT_DELIVERY_LIMIT", "MemoryBroker", "MemoryPublisher"]

log = structlog.get_logger(__name__)

#: RabbitMQ 4.0+: a quorum queue declared without ``x-delivery-limit`` still has this one.
QUORUM_DEFAULT_DELIVERY_LIMIT = 20


class MemoryBroker:
    """The in-process "server": exchanges, queues, routing, TTL and dead-lettering."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.exchanges: dict[str, ExchangeState] = {}
        self.queues: dict[str, QueueState] = {}
        self._consumers: list[Consumer] = []
        self._rr = itertools.count()
        self._timer_loops: set[asyncio.AbstractEventLoop] = set()

    def publisher(self) -> MemoryPublisher:
        return MemoryPublisher(self)

    def client(self) -> MemoryClient:
        from dunning.broker.memory.client import MemoryClient

        return MemoryClient(self)

    # --- declare -------------------------------------------------------------------------
    def declare(self, topology: Topology) -> None:
        """Declare exchanges, queues and bindings; equal re-declarations are no-ops."""
        with self.lock:
            for ex in topology.exchanges:
                current = self.exchanges.get(ex.name)
                if current is None:
                    self.exchanges[ex.name] = ExchangeState(ex.name, ex.type, dict(ex.arguments))
                    continue
                if current.type != ex.type:
                    raise TopologyMismatchError(ex.name, "type", current.type, ex.type)
                _compare_arguments(ex.name, current.arguments, ex.arguments)
            for q in topology.queues:
                current_q = self.queues.get(q.name)
                if current_q is None:
                    self.queues[q.name] = QueueState(q.name, dict(q.arguments))
                else:
                    _compare_arguments(q.name, current_q.arguments, q.arguments)
                for binding in q.bindings:
                    if binding.exchange not in self.exchanges:
                        raise BrokerError(f"binding {q.name!r} to unknown {binding.exchange!r}")
                    self.exchanges[binding.exchange].bind(q.name, binding.routing_key)

    # --- publish and route ---------------------------------------------------------------
    def publish(self, message: OutboundMessage, *, mandatory: bool = True) -> None:
        """Route one message; raises PublishError for an unknown exchange or, when mandatory,
        a message no queue takes."""
        with self.lock:
            self.expire_locked()
            stored = StoredMessage(
                body=message.body,
                headers=dict(message.headers),
                exchange=message.exchange,
                routing_key=message.routing_key,
                message_id=message.message_id,
            )
            if message.exchange and message.exchange not in self.exchanges:
                raise PublishError(f"no exchange {message.exchange!r}")
            if not self._route_locked(message.exchange, message.routing_key, stored) and mandatory:
                raise PublishError(
                    f"unroutable: exchange {message.exchange!r} key {message.routing_key!r}"
                )

    def _route_locked(self, exchange: str, routing_key: str, message: StoredMessage) -> bool:
        if exchange == "":
            targets = {routing_key} if routing_key in self.queues else set()
        else:
            targets = self._targets_locked(exchange, routing_key, seen=set())
        for name in sorted(targets):
            self._enqueue_locked(name, message.copy())
        return bool(targets)

    def _targets_locked(self, exchange: str, routing_key: str, seen: set[str]) -> set[str]:
        state = self.exchanges.get(exchange)
        if state is None or exchange in seen:
            return set()
        seen.add(exchange)
        targets = state.match(routing_key)
        alternate = state.arguments.get("alternate-exchange")
        if not targets and alternate:
            targets = self._targets_locked(str(alternate), routing_key, seen)
        return targets

    def _enqueue_locked(self, queue: str, message: StoredMessage, *, front: bool = False) -> None:
        state = self.queues[queue]
        ttl_ms = state.arguments.get("x-message-ttl")
        message.expires_at = None if ttl_ms is None else time.monotonic() + int(ttl_ms) / 1000
        if front:
            state.ready.appendleft(message)
        else:
            state.ready.append(message)
        max_length = state.arguments.get("x-max-length")
        while max_length is not None and len(state.ready) > int(max_length):
            # RabbitMQ's default overflow (drop-head): the oldest ready message goes.
            self.dead_letter_locked(queue, state.ready.popleft(), "maxlen")
        if ttl_ms is not None:
            self._arm_timers(int(ttl_ms) / 1000)
        self._dispatch_locked(queue)

    def requeue_locked(self, queue: str, messages: list[StoredMessage]) -> None:
        """Return messages to the head of ``queue`` in order, counting the redelivery."""
        state = self.queues[queue]
        limit = state.arguments.get("x-delivery-limit")
        if limit is None and state.is_quorum:
            limit = QUORUM_DEFAULT_DELIVERY_LIMIT
        for message in reversed(messages):
            message.redelivered = True
            message.delivery_count += 1
            if state.is_quorum:
                message.headers["x-delivery-count"] = message.delivery_count
            if limit is not None and message.delivery_count > int(limit):
                self.dead_letter_locked(queue, message, "delivery_limit")
            else:
                state.ready.appendleft(message)
        self._dispatch_locked(queue)

    def dead_letter_locked(self, queue: str, message: StoredMessage, reason: str) -> None:
        """Dead-letter to the queue's DLX with the routing key kept; dropped when it has none."""
        args = self.queues[queue].arguments
        dlx = args.get("x-dead-letter-exchange")
        if dlx is None:
            log.debug("message dropped", queue=queue, reason=reason)
            return
        routing_key = str(args.get("x-dead-letter-routing-key", message.routing_key))
        dead = StoredMessage(
            body=message.body,
            headers=add_death(message, queue, reason, datetime.now(UTC)),
            exchange=str(dlx),
            routing_key=routing_key,
            message_id=message.message_id,
        )
        dead.headers.pop("x-delivery-count", None)
        if not self._route_locked(str(dlx), routing_key, dead):
            log.warning("dead letter unroutable, dropped", queue=queue, dlx=dlx, reason=reason)

    # --- TTL -----------------------------------------------------------------------------
    def expire_locked(self) -> None:
        """Dead-letter every message whose queue TTL has passed (they expire at the head)."""
        now = time.monotonic()
        for name, state in self.queues.items():
            while state.ready and (expiry := state.ready[0].expires_at) is not None:
                if expiry > now:
                    break
                self.dead_letter_locked(name, state.ready.popleft(), "expired")

    def _arm_timers(self, delay_s: float) -> None:
        for loop in list(self._timer_loops):
            if loop.is_closed():
                self._timer_loops.discard(loop)
                continue
            loop.call_soon_threadsafe(loop.call_later, delay_s + 0.001, self._on_timer)

    def _on_timer(self) -> None:
        with self.lock:
            self.expire_locked()

    # --- consumers -----------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        with self.lock:
            if consumer.queue not in self.queues:
                raise BrokerError(f"no queue {consumer.queue!r}")
            if consumer.loop not in self._timer_loops:
                # Messages already waiting out a TTL need a timer on this new loop too.
                self._timer_loops.add(consumer.loop)
                now = time.monotonic()
                for state in self.queues.values():
                    if state.ready and (expiry := state.ready[-1].expires_at) is not None:
                        consumer.loop.call_soon_threadsafe(
                            consumer.loop.call_later, max(expiry - now, 0) + 0.001, self._on_timer
                        )
            self._consumers.append(consumer)
            self._dispatch_locked(consumer.queue)

    def remove_consumers(self, client: MemoryClient) -> None:
        with self.lock:
            self._consumers = [c for c in self._consumers if c.client is not client]

    def dispatch_all_locked(self) -> None:
        for name in self.queues:
            self._dispatch_locked(name)

    def _dispatch_locked(self, queue: str) -> None:
        state = self.queues[queue]
        candidates = [c for c in self._consumers if c.queue == queue]
        while state.ready and candidates:
            start = next(self._rr)
            order = candidates[start % len(candidates) :] + candidates[: start % len(candidates)]
            consumer = next((c for c in order if len(c.in_hand) < c.prefetch), None)
            if consumer is None:
                return
            delivery = consumer.client.session.take(queue, state.ready.popleft())
            consumer.in_hand.add(delivery.delivery_tag)
            consumer.loop.call_soon_threadsafe(consumer.client.start_handler, consumer, delivery)

    def consumer_count(self, queue: str) -> int:
        """Consumers subscribed to ``queue`` (as a passive declare reports them)."""
        with self.lock:
            return sum(1 for c in self._consumers if c.queue == queue)

    def queue_depth(self, queue: str) -> int:
        with self.lock:
            self.expire_locked()
            if queue not in self.queues:
                raise BrokerError(f"no queue {queue!r}")
            return len(self.queues[queue].ready)

    def get(self, session: Session, queue: str) -> Delivery | None:
        with self.lock:
            self.expire_locked()
            if queue not in self.queues:
                raise BrokerError(f"no queue {queue!r}")
            ready = self.queues[queue].ready
            return session.take(queue, ready.popleft()) if ready else None


def _compare_arguments(name: str, current: dict[str, Any], wanted: Any) -> None:
    for key in sorted(set(current) | set(wanted)):
        if current.get(key) != wanted.get(key):
            raise TopologyMismatchError(name, key, current.get(key), wanted.get(key))


class MemoryPublisher:
    """The synchronous :class:`~dunning.broker.base.Publisher` face of a MemoryBroker."""

    def __init__(self, server: MemoryBroker) -> None:
        self._server = server
        self.session = Session(server)

    def declare(self, topology: Topology) -> None:
        self._server.declare(topology)

    def publish_many(self, messages: Iterable[OutboundMessage]) -> int:
        count = 0
        for message in messages:
            self._server.publish(message, mandatory=True)
            count += 1
        return count

    def get(self, queue: str) -> Delivery | None:
        return self._server.get(self.session, queue)

    def ack(self, delivery: Delivery) -> None:
        with self._server.lock:
            self.session.settle(delivery, ack=True, requeue=False)

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        with self._server.lock:
            self.session.settle(delivery, ack=False, requeue=requeue)

    def queue_depth(self, queue: str) -> int:
        return self._server.queue_depth(queue)

    def close(self) -> None:
        with self._server.lock:
            self.session.return_all_locked()
            self.session.closed = True
