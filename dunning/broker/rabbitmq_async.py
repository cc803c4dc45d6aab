"""The worker side on RabbitMQ: pika's AsyncioConnection wrapped in asyncio futures.

One connection and one amqp_channel in confirm mode carry consuming and publishing. Prefetch is
per consumer (``basic_qos(global_qos=False)``: quorum queues refuse global QoS). Publishes are
confirmed individually but pipelined across tasks; a ``multiple=True`` ack settles every tag up
to its own, and a ``basic.return`` (which always precedes the ack of the same message) marks the
publish it matches by exchange, routing key and body as unroutable.

Each amqp_channel opened is a new *generation*: delivery tags belong to their channel, so acks
and rejects carrying an older generation are dropped (RabbitMQ has already requeued those).

With a list of broker URLs (a cluster's nodes), each ``connect`` goes through them in the order
of :class:`~dunning.broker.urls.BrokerRotation` until one opens; a refused login or vhost ends
the round at once (the nodes of a cluster share users and vhosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pika.spec
import structlog
from pika.adapters.asyncio_connection import AsyncioConnection

from dunning.broker.base import Delivery, Handler, OutboundMessage
from dunning.broker.rabbitmq import PRECONDITION_FAILED, mismatch_from_reply, plain_headers
from dunning.broker.rabbitmq_connect import connect_failure
from dunning.broker.topology import Topology
from dunning.broker.urls import BrokerRotation, broker_urls, masked_url
from dunning.errors import (
    BrokerAccessRefusedError,
    BrokerConnectionError,
    BrokerError,
    PublishError,
)

__all__ = ["RabbitAsyncBroker"]

log = structlog.get_logger(__name__)
_NOT_FOUND = 404
# RabbitMQ's reply when a classic queue's node is down: "home node '...' of durable queue '...'
# in vhost '...' is down or inaccessible".
_HOME_NODE_DOWN = "is down or inaccessible"


@dataclass
class _Pending:
    future: asyncio.Future[None]
    exchange: str
    routing_key: str
    body: bytes
    returned: str | None = None


class RabbitAsyncBroker:
    """:class:`~dunning.broker.base.AsyncBroker` on RabbitMQ (pika asyncio adapter)."""

    def __init__(self, url: str, *, publish_timeout_s: float = 30.0) -> None:
        self._rotation = BrokerRotation(broker_urls(url))
        try:
            self._params = [pika.URLParameters(one) for one in self._rotation.urls]
        except ValueError as exc:
            raise BrokerConnectionError(f"bad broker URL: {exc}") from exc
        self._publish_timeout_s = publish_timeout_s
        self._connection: Any = None
        self._amqp_channel: Any = None
        self._generation = 0
        self._closed: asyncio.Future[None] | None = None
        self._closing = False
        self._waiters: set[asyncio.Future[Any]] = set()
        self._pending: dict[int, _Pending] = {}
        self._next_tag = 1
        self._consumer_tags: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # --- connection and channel -----------------------------------------------------------
    async def connect(self) -> None:
        failures: list[BrokerConnectionError] = []
        for index, url in self._rotation.order():
            try:
                await self._open(self._params[index], url)
            except BrokerAccessRefusedError:
                raise
            except BrokerConnectionError as exc:
                failures.append(exc)
                continue
            self._rotation.connected(index)
            if len(self._params) > 1:
                log.info("broker.connected", broker=masked_url(url))
            await self._ensure_channel()
            return
        if len(failures) == 1:
            raise failures[0]
        raise BrokerConnectionError(
            f"none of the {len(failures)} brokers answered: "
            + "; ".join(str(failure) for failure in failures)
        )

    async def _open(self, params: pika.URLParameters, url: str) -> None:
        """Open the connection to one broker; connect_failure's error when it does not."""
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()

        def on_open(_: Any) -> None:
            if not opened.done():
                opened.set_result(None)

        def on_open_error(_: Any, error: BaseException | str) -> None:
            if not opened.done():
                opened.set_exception(connect_failure(error, url))

        self._closing = False
        self._closed = None
        try:
            self._connection = AsyncioConnection(
                params,
                on_open_callback=on_open,
                on_open_error_callback=on_open_error,
                on_close_callback=self._on_connection_closed,
                custom_ioloop=loop,
            )
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise connect_failure(exc, url) from exc
        await opened
        self._closed = loop.create_future()

    async def _rpc(
        self, call: Callable[..., Any], *args: Any, callback_name: str = "callback", **kwargs: Any
    ) -> Any:
        """Run one asynchronous pika call; fails when the channel or connection closes.

        The call's completion callback (``callback_name``) resolves the future with its frame.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any = None) -> None:
            if not future.done():
                future.set_result(result)

        self._waiters.add(future)
        try:
            try:
                call(*args, **{callback_name: done}, **kwargs)
            except pika.exceptions.AMQPError as exc:
                raise BrokerConnectionError(f"broker call failed: {exc!r}") from exc
            return await future
        finally:
            self._waiters.discard(future)

    async def _ensure_channel(self) -> Any:
        if self._amqp_channel is not None and self._amqp_channel.is_open:
            return self._amqp_channel
        if self._connection is None or not self._connection.is_open:
            raise BrokerConnectionError("not connected")
        amqp_channel = await self._rpc(self._connection.channel, callback_name="on_open_callback")
        amqp_channel.add_on_close_callback(self._on_channel_closed)
        amqp_channel.add_on_return_callback(self._on_return)
        self._amqp_channel = amqp_channel
        self._generation += 1
        self._next_tag = 1
        self._consumer_tags.clear()
        await self._rpc(amqp_channel.confirm_delivery, ack_nack_callback=self._on_confirm)
        return amqp_channel

    def _fail_waiters(self, error: BrokerError) -> None:
        for future in list(self._waiters):
            if not future.done():
                future.set_exception(error)
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(PublishError(f"not confirmed: {error}"))

    def _on_channel_closed(self, amqp_channel: Any, reason: BaseException) -> None:
        if amqp_channel is not self._amqp_channel:
            return
        self._amqp_channel = None
        consuming = bool(self._consumer_tags)
        self._consumer_tags.clear()
        code = getattr(reason, "reply_code", None)
        text = str(getattr(reason, "reply_text", reason))
        error: BrokerError
        if code == PRECONDITION_FAILED:
            error = mismatch_from_reply(text)
        elif code == _NOT_FOUND:
            error = PublishError(text) if "exchange" in text else BrokerError(text)
        else:
            error = BrokerConnectionError(f"amqp_channel closed: {reason!r}")
        self._fail_waiters(error)
        connection = self._connection
        if consuming and not self._closing and connection is not None and connection.is_open:
            # Consumers died with their channel: report the link as lost so the worker
            # reconnects and re-consumes (its unacked messages are already requeued).
            log.warning("amqp_channel closed under consumers", reason=text)
            connection.close()

    def _on_connection_closed(self, _: Any, reason: BaseException) -> None:
        self._amqp_channel = None
        self._consumer_tags.clear()
        self._fail_waiters(BrokerConnectionError(f"connection closed: {reason!r}"))
        if self._closed is None or self._closed.done():
            return
        if self._closing:
            self._closed.set_result(None)
        else:
            # State first: the log call must not be able to leave waiters hanging.
            self._closed.set_exception(BrokerConnectionError(f"connection lost: {reason!r}"))
            log.warning("broker connection lost", reason=repr(reason))

    # --- topology -----------------------------------------------------------------------
    async def declare(self, topology: Topology) -> None:
        ch = await self._ensure_channel()
        for ex in topology.exchanges:
            await self._rpc(
                ch.exchange_declare,
                exchange=ex.name,
                exchange_type=ex.type,
                durable=True,
                arguments=dict(ex.arguments),
            )
        for q in topology.queues:
            try:
                await self._rpc(
                    ch.queue_declare, queue=q.name, durable=True, arguments=dict(q.arguments)
                )
            except BrokerError as exc:
                if _HOME_NODE_DOWN not in str(exc):
                    raise
                # A classic queue (a dead-letter queue) lives on one node of a cluster; while
                # that node is down the queue exists but cannot be declared. The worker's own
                # queue is replicated, so it goes on consuming (docs/operations.md).
                log.warning("topology.queue_unavailable", queue=q.name, reason=str(exc))
                ch = await self._ensure_channel()
                continue
            for b in q.bindings:
                await self._rpc(ch.queue_bind, q.name, b.exchange, routing_key=b.routing_key)

    # --- consuming ----------------------------------------------------------------------
    async def consume(self, queue: str, *, prefetch: int, handler: Handler) -> None:
        ch = await self._ensure_channel()
        await self._rpc(ch.basic_qos, prefetch_count=prefetch)

        def on_message(
            amqp_channel: Any, method: Any, properties: pika.spec.BasicProperties, body: bytes
        ) -> None:
            if amqp_channel is not self._amqp_channel:
                return
            delivery = Delivery(
                queue=queue,
                routing_key=method.routing_key,
                body=body,
                headers=plain_headers(properties.headers),
                redelivered=bool(method.redelivered),
                delivery_tag=method.delivery_tag,
                generation=self._generation,
                message_id=properties.message_id,
                exchange=method.exchange,
            )
            task = asyncio.get_running_loop().create_task(_run(handler, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._handler_done)

        consumer_tag = f"dunning.{queue}.{uuid.uuid4().hex[:12]}"
        await self._rpc(ch.basic_consume, queue, on_message, consumer_tag=consumer_tag)
        self._consumer_tags.append(consumer_tag)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handler failed; message stays unacked", error=repr(task.exception()))

    async def cancel(self) -> None:
        ch = self._amqp_channel
        tags, self._consumer_tags = list(self._consumer_tags), []
        for tag in tags:
            if ch is None or not ch.is_open:
                return
            await self._rpc(ch.basic_cancel, tag)

    def _settle(self, delivery: Delivery, settle: Callable[[Any], None]) -> None:
        ch = self._amqp_channel
        if ch is None or not ch.is_open or delivery.generation != self._generation:
            log.debug("stale settle dropped", queue=delivery.queue, tag=delivery.delivery_tag)
            return
        try:
            settle(ch)
        except pika.exceptions.AMQPError as exc:
            raise BrokerConnectionError(f"settle failed: {exc!r}") from exc

    async def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, lambda ch: ch.basic_ack(delivery.delivery_tag))

    async def reject(self, delivery: Delivery, *, requeue: bool) -> None:
        self._settle(delivery, lambda ch: ch.basic_reject(delivery.delivery_tag, requeue=requeue))

    # --- publishing ---------------------------------------------------------------------
    async def publish(self, message: OutboundMessage) -> None:
        ch = await self._ensure_channel()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tag = self._next_tag
        properties = pika.BasicProperties(
            delivery_mode=2, headers=dict(message.headers), message_id=message.message_id
        )
        try:
            ch.basic_publish(
                message.exchange, message.routing_key, message.body, properties, mandatory=True
            )
        except pika.exceptions.AMQPError as exc:
            raise PublishError(f"publish failed: {exc!r}") from exc
        self._next_tag += 1
        self._pending[tag] = _Pending(future, message.exchange, message.routing_key, message.body)
        try:
            await asyncio.wait_for(asyncio.shield(future), self._publish_timeout_s)
        except TimeoutError as exc:
            raise PublishError(f"no confirm within {self._publish_timeout_s}s") from exc

    def _on_return(self, _: Any, method: Any, __: Any, body: bytes) -> None:
        for tag in sorted(self._pending):
            item = self._pending[tag]
            same = (item.exchange, item.routing_key, item.body)
            if item.returned is None and same == (method.exchange, method.routing_key, body):
                item.returned = f"{method.reply_code} {method.reply_text}"
                return

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nacked = isinstance(method, pika.spec.Basic.Nack)
        tags = [t for t in self._pending if t <= method.delivery_tag] if method.multiple else []
        for tag in tags or [method.delivery_tag]:
            item = self._pending.pop(tag, None)
            if item is None or item.future.done():
                continue
            if nacked:
                item.future.set_exception(PublishError("nacked by the broker"))
            elif item.returned is not None:
                item.future.set_exception(
                    PublishError(
                        f"unroutable ({item.returned}): exchange {item.exchange!r} "
                        f"routing key {item.routing_key!r}"
                    )
                )
            else:
                item.future.set_result(None)

    # --- closing ------------------------------------------------------------------------
    async def wait_closed(self) -> None:
        if self._closed is None:
            raise BrokerConnectionError("not connected")
        await asyncio.shield(self._closed)

    async def close(self) -> None:
        self._closing = True
        connection = self._connection
        if connection is not None and not (connection.is_closed or connection.is_closing):
            connection.close()
        if self._closed is not None:
            # Already lost is closed too: closing is done either way.
            with contextlib.suppress(BrokerConnectionError):
                await asyncio.shield(self._closed)

    def simulate_connection_loss(self) -> None:
        """Test hook: shut the TCP socket down under pika, as a network failure would."""
        transport = getattr(self._connection, "_transport", None)
        sock = getattr(transport, "_sock", None)
        if not isinstance(sock, socket.socket):
            raise BrokerConnectionError("no open socket to break")
        sock.shutdown(socket.SHUT_RDWR)


async def _run(handler: Handler, delivery: Delivery) -> None:
    await handler(delivery)
