"""The synchronous RabbitMQ publisher and admin face, on kombu's py-amqp connection.

Publishing pipelines confirms: every message of a batch is sent with ``mandatory`` before any
confirm is awaited, then acks are counted (``multiple=True`` acks everything up to its tag).
kombu's ``confirm_publish`` transport option waits for each confirm in turn (~1,300 msg/s in
FIELD-NOTES); pipelining keeps the same guarantee at a multiple of that rate. A ``basic.return``
always reaches us before the ack of the same message, so a returned message fails its batch.

With a list of broker URLs (a cluster's nodes), each (re)connect goes through them in the order
of :class:`~dunning.broker.urls.BrokerRotation`, one kombu connection per URL tried (so a failure
names its node and a dead node costs no retry pause). A batch whose connection is lost before
all its confirms arrived is published again on the next node, once per further URL: messages
the lost node had already taken may then be queued twice, which the worker's ledger claim
absorbs as it absorbs any redelivery.

Messages the broker nacks are published again after a pause, a few times with growing pauses
(about a minute in all), before the batch fails: a quorum queue whose leader just died nacks what
reaches it until the remaining members have elected a new one, which takes a few seconds on an
idle cluster and longer on a loaded one. Each retry goes out on a fresh channel, so the broker
builds its view of the queue's leader anew rather than reusing the one that nacked; with a list
of nodes, a batch nacked twice on one node is published again on the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import amqp
import amqp.exceptions
import amqp.spec
import kombu
import kombu.exceptions
import structlog

from dunning.broker.base import Delivery, OutboundMessage
from dunning.broker.rabbitmq import PRECONDITION_FAILED, mismatch_from_reply, plain_headers
from dunning.broker.topology import Topology
from dunning.broker.urls import BrokerRotation, broker_urls, masked_url
from dunning.errors import BrokerConnectionError, BrokerError, PublishError

__all__ = ["RabbitPublisher"]

log = structlog.get_logger(__name__)
_CONNECTION_ERRORS = (
    OSError,
    amqp.exceptions.ConnectionError,
    kombu.exceptions.OperationalError,
)
#: Pauses before publishing nacked messages again (a quorum queue's leader election).
NACK_RETRY_WAITS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Nacked retries on one node before a batch moves to the next node of a list.
NACKS_BEFORE_NEXT_NODE = 2


class RabbitPublisher:
    """:class:`~dunning.broker.base.Publisher` on RabbitMQ; one connection, one amqp_channel."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 10.0,
        confirm_timeout_s: float = 30.0,
        nack_retry_waits_s: Sequence[float] = NACK_RETRY_WAITS_S,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._confirm_timeout_s = confirm_timeout_s
        self._nack_retry_waits_s = tuple(nack_retry_waits_s)
        self._pause = pause
        self._connect_timeout_s = connect_timeout_s
        self._rotation = BrokerRotation(broker_urls(url))
        self._connection: Any = None
        #: Batches published again on another node after a lost connection.
        self.failovers = 0
        #: Times nacked messages were published again.
        self.nack_retries = 0
        self._generation = 0
        self._amqp_channel: Any = None
        self._acked_to = 0
        self._acked: set[int] = set()
        self._failed: dict[int, str] = {}
        self._next_tag = 1
        self._returned: list[tuple[str, str, bytes]] = []
        with self._translate("connect"):
            self._open_channel()

    def _connect(self) -> None:
        """Open a connection to the first broker of the rotation that answers."""
        # kombu ships partial annotations only; typed as Any at this one boundary.
        kombu_module: Any = kombu
        single = len(self._rotation.urls) == 1
        failures: list[str] = []
        for index, url in self._rotation.order():
            connection = kombu_module.Connection(
                url, connect_timeout=self._connect_timeout_s, heartbeat=0
            )
            try:
                if single:
                    connection.connect()  # kombu's own one retry, as with one broker always
                else:
                    connection.ensure_connection(max_retries=0)
            except _CONNECTION_ERRORS as exc:
                if single:
                    raise
                failures.append(f"{masked_url(url)}: {exc}")
                continue
            self._connection = connection
            self._rotation.connected(index)
            if not single:
                log.debug("broker.connected", broker=masked_url(url))
            return
        raise BrokerConnectionError(
            f"connect: none of the {len(failures)} brokers answered: " + "; ".join(failures)
        )

    @contextmanager
    def _translate(self, action: str, refused: type[BrokerError] = BrokerError) -> Iterator[None]:
        """Translate py-amqp/kombu failures; ``refused`` is the class for channel
        errors other than a topology mismatch (PublishError while publishing)."""
        try:
            yield
        except amqp.exceptions.ChannelError as exc:
            self._amqp_channel = None  # the broker closed it; the next call opens another
            if getattr(exc, "reply_code", None) == PRECONDITION_FAILED:
                raise mismatch_from_reply(str(exc.reply_text)) from exc
            raise refused(f"{action}: {exc.reply_text}") from exc
        except _CONNECTION_ERRORS as exc:
            self._amqp_channel = None
            self._drop()  # the next call connects afresh, to the next broker of a list
            raise BrokerConnectionError(f"{action}: {exc}") from exc
        except amqp.exceptions.AMQPError as exc:
            raise BrokerError(f"{action}: {exc}") from exc

    def _open_channel(self) -> Any:
        if self._amqp_channel is not None and self._amqp_channel.is_open:
            return self._amqp_channel
        if self._connection is None or not self._connection.connected:
            self._drop()
            self._connect()
        amqp_channel = self._connection.channel()
        amqp_channel.confirm_select()
        amqp_channel.events["basic_ack"].add(self._on_ack)
        amqp_channel.events["basic_nack"].add(self._on_nack)
        amqp_channel.events["basic_return"].add(self._on_return)
        self._amqp_channel = amqp_channel
        self._generation += 1
        self._next_tag = 1
        self._acked_to = 0
        self._acked.clear()
        self._failed.clear()
        return amqp_channel

    def _close_channel(self) -> None:
        """Close the publishing channel so that the next publish opens a fresh one."""
        amqp_channel, self._amqp_channel = self._amqp_channel, None
        if amqp_channel is None:
            return
        try:
            amqp_channel.close()
        except (*_CONNECTION_ERRORS, amqp.exceptions.AMQPError) as exc:
            self._drop()  # the connection went with it: the next publish reconnects
            log.debug("closing the channel failed", error=str(exc))

    def _settle_tags(self, tag: int, multiple: bool, mark: Callable[[int], None]) -> None:
        for settled in range(self._acked_to + 1, tag + 1) if multiple else (tag,):
            mark(settled)
        while self._acked_to + 1 in self._acked:
            self._acked_to += 1

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle_tags(delivery_tag, multiple, self._acked.add)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        def mark(tag: int) -> None:
            self._failed.setdefault(tag, "nacked by the broker")
            self._acked.add(tag)

        self._settle_tags(delivery_tag, multiple, mark)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self._returned.append((exchange, routing_key, bytes(message.body)))

    def declare(self, topology: Topology) -> None:
        with self._translate("declare"):
            amqp_channel = self._open_channel()
            for ex in topology.exchanges:
                amqp_channel.exchange_declare(
                    ex.name, ex.type, durable=True, auto_delete=False, arguments=dict(ex.arguments)
                )
            for q in topology.queues:
                amqp_channel.queue_declare(
                    q.name, durable=True, auto_delete=False, arguments=dict(q.arguments)
                )
                for binding in q.bindings:
                    amqp_channel.queue_bind(q.name, binding.exchange, binding.routing_key)

    def publish_many(self, messages: Iterable[OutboundMessage]) -> int:
        batch = list(messages)
        pending = batch
        failovers_left = len(self._rotation.urls) - 1
        waits = iter(self._nack_retry_waits_s)
        nacks_here = 0
        while pending:
            try:
                nacked = self._publish_batch(pending)
            except BrokerConnectionError as exc:
                if failovers_left == 0:
                    raise
                failovers_left -= 1
                self.failovers += 1
                log.warning("broker.failover", reason=str(exc), messages=len(pending))
                continue
            if nacked:
                wait_s = next(waits, None)
                if wait_s is None:
                    raise PublishError(
                        f"{len(nacked)} message(s) nacked by the broker, still after "
                        f"{len(self._nack_retry_waits_s)} retries"
                    )
                self.nack_retries += 1
                nacks_here += 1
                log.warning("broker.nacked", messages=len(nacked), retry_in_s=wait_s)
                self._pause(wait_s)
                if len(self._rotation.urls) > 1 and nacks_here >= NACKS_BEFORE_NEXT_NODE:
                    nacks_here = 0
                    self._amqp_channel = None
                    self._drop()  # the next publish connects to the next node of the list
                else:
                    self._close_channel()
            pending = nacked
        return len(batch)

    def _publish_batch(self, messages: list[OutboundMessage]) -> list[OutboundMessage]:
        """Publish ``messages`` and wait for every confirm; returns the ones nacked."""
        with self._translate("publish", PublishError):
            amqp_channel = self._open_channel()
            first = self._next_tag
            self._returned.clear()
            for message in messages:
                amqp_channel.basic_publish(
                    amqp.Message(
                        message.body,
                        delivery_mode=2,
                        application_headers=dict(message.headers),
                        **({"message_id": message.message_id} if message.message_id else {}),
                    ),
                    exchange=message.exchange,
                    routing_key=message.routing_key,
                    mandatory=True,
                )
                self._next_tag += 1
            last = self._next_tag - 1
            while self._acked_to < last:
                try:
                    self._connection.drain_events(timeout=self._confirm_timeout_s)
                except TimeoutError as exc:
                    raise PublishError(f"no confirm within {self._confirm_timeout_s}s") from exc
        failed = {tag: why for tag, why in self._failed.items() if first <= tag <= last}
        if self._returned:
            exchange, routing_key, _ = self._returned[0]
            raise PublishError(
                f"{len(self._returned)} unroutable message(s), first to exchange {exchange!r} "
                f"with routing key {routing_key!r}"
            )
        return [messages[tag - first] for tag in sorted(failed)]

    def get(self, queue: str) -> Delivery | None:
        with self._translate(f"get from {queue}"):
            message = self._open_channel().basic_get(queue, no_ack=False)
        if message is None:
            return None
        info = message.delivery_info
        return Delivery(
            queue=queue,
            routing_key=str(info["routing_key"]),
            body=bytes(message.body),
            headers=plain_headers(message.properties.get("application_headers")),
            redelivered=bool(info["redelivered"]),
            delivery_tag=int(info["delivery_tag"]),
            generation=self._generation,
            message_id=message.properties.get("message_id"),
            exchange=str(info["exchange"]),
        )

    def _current(self, delivery: Delivery) -> bool:
        live = self._amqp_channel is not None and self._amqp_channel.is_open
        if not live or delivery.generation != self._generation:
            log.debug("stale settle dropped", queue=delivery.queue, tag=delivery.delivery_tag)
            return False
        return True

    def ack(self, delivery: Delivery) -> None:
        with self._translate("ack"):
            if self._current(delivery):
                self._amqp_channel.basic_ack(delivery.delivery_tag)

    def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        """Settle without acking; ``requeue`` hands the message back unchanged.

        A hand-back is a ``basic.nack``: the admin tools hand messages back after reading them,
        which is no failed delivery, and RabbitMQ 4.3+ counts a ``basic.reject`` with requeue
        against the delivery count (and a quorum queue's delivery limit) but not a nack.
        py-amqp has no ``basic_nack``, so the method frame is sent as the spec defines it.
        """
        with self._translate("reject"):
            if not self._current(delivery):
                return
            if requeue:
                self._amqp_channel.send_method(
                    amqp.spec.Basic.Nack, "Lbb", (delivery.delivery_tag, False, True)
                )
            else:
                self._amqp_channel.basic_reject(delivery.delivery_tag, requeue=False)

    def queue_depth(self, queue: str) -> int:
        with self._translate(f"queue depth of {queue}"):
            result = self._open_channel().queue_declare(queue, passive=True)
        return int(result.message_count)

    def queue_stats(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) of ``queue`` from a passive declare (`dunning status`)."""
        with self._translate(f"passive declare of {queue}"):
            result = self._open_channel().queue_declare(queue, passive=True)
        return int(result.message_count), int(result.consumer_count)

    def delete_queue(self, queue: str) -> None:
        """Admin and tests: delete ``queue`` if it exists (its messages are lost)."""
        with self._translate(f"delete {queue}"):
            self._open_channel().queue_delete(queue)

    def fresh_channel(self) -> None:
        """Close the amqp_channel; the next call opens another (deliveries in hand go back).

        Needed after a queue is deleted and declared again with another type: RabbitMQ's channel
        keeps per-queue state of the old type and fails the connection on the next publish.
        """
        amqp_channel, self._amqp_channel = self._amqp_channel, None
        if amqp_channel is not None and amqp_channel.is_open:
            with self._translate("close channel"):
                amqp_channel.close()

    def unbind_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        """Remove one binding of an existing queue (a no-op when there is no such binding)."""
        with self._translate(f"unbind {queue} from {exchange}"):
            self._open_channel().queue_unbind(queue, exchange, routing_key)

    def delete_exchange(self, exchange: str) -> None:
        with self._translate(f"delete {exchange}"):
            self._open_channel().exchange_delete(exchange)

    def close(self) -> None:
        self._release()

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.release()
        except (*_CONNECTION_ERRORS, amqp.exceptions.AMQPError) as exc:
            log.debug("close failed", error=str(exc))

    def _drop(self) -> None:
        """Forget a failed connection without talking to the broker (a closing handshake
        with a node that stopped answering would wait forever)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.collect()
        except (*_CONNECTION_ERRORS, amqp.exceptions.AMQPError) as exc:
            log.debug("dropping the connection failed", error=str(exc))
