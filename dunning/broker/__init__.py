"""The broker layer: the only package that imports pika or kombu.

``open_publisher`` and ``open_async_broker`` pick the implementation from the URL:
``memory://`` is one process-wide :class:`~dunning.broker.memory.MemoryBroker` (so the demo's
evaluator and its in-process workers meet on it), ``amqp://`` and ``amqps://`` are RabbitMQ: one
URL, or a comma-separated list of a cluster's nodes (dunning/broker/urls.py).
"""

from __future__ import annotations

import threading

from dunning.broker.base import AsyncBroker, Delivery, Handler, OutboundMessage, Publisher
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import Topology, build_topology
from dunning.broker.urls import broker_urls, split_broker_urls
from dunning.settings import Settings
from dunning.urls import check_broker_url

__all__ = [
    "AsyncBroker",
    "Delivery",
    "Handler",
    "MemoryBroker",
    "OutboundMessage",
    "Publisher",
    "memory_server",
    "open_async_broker",
    "open_publisher",
    "reset_memory_server",
    "topology_for",
]

_lock = threading.Lock()
_server: MemoryBroker | None = None


def memory_server() -> MemoryBroker:
    """The process-wide memory broker behind ``memory://`` URLs (created on first use)."""
    global _server  # noqa: PLW0603 -- one in-process "server" is the point of memory://
    with _lock:
        if _server is None:
            _server = MemoryBroker()
        return _server


def reset_memory_server() -> MemoryBroker:
    """Replace the process-wide memory broker with an empty one (tests); returns the new one."""
    global _server  # noqa: PLW0603 -- see memory_server
    with _lock:
        _server = MemoryBroker()
        return _server


def _scheme(url: str) -> str:
    """``memory`` or ``amqp``/``amqps`` (of the first URL of a list); ConfigError (URLs masked)
    for another scheme or a URL that cannot be parsed."""
    for one in split_broker_urls(url):
        if one.lower().startswith(("amqp://", "amqps://")):
            check_broker_url(one)  # before urlsplit, kombu or pika raise a bare ValueError
    return broker_urls(url)[0].split("://", 1)[0].lower()


def topology_for(settings: Settings) -> Topology | None:
    """The topology a component declares at start-up, or None when declaring is switched off
    (least-privilege RabbitMQ users cannot configure; the admin declares once)."""
    if not settings.declare_topology:
        return None
    return build_topology(delivery_limit=settings.delivery_limit)


def open_publisher(url: str, topology: Topology | None = None) -> Publisher:
    """A connected synchronous publisher; declares ``topology`` first when given.

    Raises ConfigError for an unknown scheme, BrokerConnectionError when RabbitMQ is down and
    TopologyMismatchError when the declared topology conflicts.
    """
    publisher: Publisher
    if _scheme(url) == "memory":
        publisher = memory_server().publisher()
    else:
        from dunning.broker.rabbitmq_sync import RabbitPublisher

        publisher = RabbitPublisher(url)
    if topology is not None:
        try:
            publisher.declare(topology)
        except BaseException:
            publisher.close()
            raise
    return publisher


def open_async_broker(url: str) -> AsyncBroker:
    """An unconnected worker-side broker; call ``await broker.connect()`` next."""
    if _scheme(url) == "memory":
        return memory_server().client()
    from dunning.broker.rabbitmq_async import RabbitAsyncBroker

    return RabbitAsyncBroker(url)
