"""The broker topology as plain data: exchanges, queues, arguments and bindings.

    dunning.intents (topic) ──<channel>──► dunning.<channel>   quorum, x-delivery-limit, DLX
    dunning.delay.<N>s (fanout) ──► dunning.delay.<N>s          TTL N s, dead-letters back to
                                                                 dunning.intents (routing key kept)
    dunning.dlx (direct) ──<channel>──► dunning.<channel>.dead    classic (see below)
    dunning.unrouted (fanout) ◄── alternate exchange of dunning.intents (unknown channels)
    dunning.receipts (topic) ──#──► dunning.receipts.feed      receipts by "<channel>.<status>";
                                                                 quorum, newest 100,000 kept

Dead-letter queues are classic queues. They are read by handing messages back (``dunning dlq
list``/``show``, ``dunning status``), and a quorum queue counts every hand-back as a delivery:
since RabbitMQ 4.0 a quorum queue without ``x-delivery-limit`` has a limit of 20, and a
dead-letter queue has no dead-letter exchange of its own, so the 21st look would drop the dead
letter silently. A classic queue has no delivery limit and keeps no delivery count. A queue's
type cannot change in place: ``dunning topology declare`` moves an older quorum dead-letter
queue's messages into a classic one (:mod:`dunning.broker.dead_queue_migration`).

Delays are fixed-TTL queues so that no message waits unacknowledged (consumer_timeout) and no
short delay queues behind a long one. A wait longer than the largest step takes several hops; the
worker re-checks ``x-dunning-not-before`` on arrival.

The receipts feed is a notification stream beside the ledger, which holds every receipt. Its
queue exists so that every receipt published is routable (the webhook publishes with
``mandatory``) and a reader can attach at any time; it is capped by message count with
``drop-head``, so a feed nobody reads keeps the newest receipts and never grows without bound
(``reject-publish`` would refuse the newest instead, and fail every publish once full). A reader
that fell behind catches up from the ledger (docs/receipts.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dunning.intents import Channel

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "DELAY_STEPS_S",
    "INTENTS_EXCHANGE",
    "RECEIPTS_EXCHANGE",
    "RECEIPTS_FEED_MAX_LENGTH",
    "RECEIPTS_FEED_QUEUE",
    "UNROUTED_QUEUE",
    "Binding",
    "ExchangeSpec",
    "QueueSpec",
    "Topology",
    "build_topology",
    "dead_queue",
    "dead_queue_spec",
    "delay_exchange",
    "delay_hop_s",
    "work_queue",
]

INTENTS_EXCHANGE = "dunning.intents"
DEAD_LETTER_EXCHANGE = "dunning.dlx"
RECEIPTS_EXCHANGE = "dunning.receipts"
UNROUTED_EXCHANGE = "dunning.unrouted"
UNROUTED_QUEUE = "dunning.unrouted"
RECEIPTS_FEED_QUEUE = "dunning.receipts.feed"
#: Receipts the feed keeps when nobody reads it (about 45 MB of receipt bodies).
RECEIPTS_FEED_MAX_LENGTH = 100_000
#: Delay queue sizes: retries and contact-window waits are composed from these hops.
DELAY_STEPS_S: tuple[int, ...] = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400)


def work_queue(channel: Channel | str) -> str:
    return f"dunning.{Channel(channel).value}"


def dead_queue(channel: Channel | str) -> str:
    return f"dunning.{Channel(channel).value}.dead"


def dead_queue_spec(channel: Channel | str) -> QueueSpec:
    """The dead-letter queue of ``channel``: classic, so reading it never counts a delivery."""
    return QueueSpec(
        dead_queue(channel),
        {"x-queue-type": "classic"},
        (Binding(DEAD_LETTER_EXCHANGE, Channel(channel).value),),
    )


def delay_exchange(step_s: int) -> str:
    return f"dunning.delay.{step_s}s"


def delay_hop_s(wait_s: float, steps: Iterable[int] = DELAY_STEPS_S) -> int:
    """The delay queue to use for a wait of ``wait_s``: the largest step not longer than it.

    Waits shorter than the smallest step use the smallest step, so a message never comes back
    early by more than one hop's rounding; the worker re-delays what arrives before its time.
    """
    ordered = sorted(steps)
    hop = ordered[0]
    for step in ordered:
        if step <= wait_s:
            hop = step
    return hop


@dataclass(frozen=True, slots=True)
class Binding:
    exchange: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: str  # topic, direct, fanout
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    arguments: Mapping[str, Any]
    bindings: tuple[Binding, ...] = ()

    @property
    def message_ttl_ms(self) -> int | None:
        value = self.arguments.get("x-message-ttl")
        return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Topology:
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]

    def queue(self, name: str) -> QueueSpec:
        for spec in self.queues:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def exchange(self, name: str) -> ExchangeSpec:
        for spec in self.exchanges:
            if spec.name == name:
                return spec
        raise KeyError(name)


def build_topology(
    *,
    channels: Iterable[Channel] = tuple(Channel),
    delivery_limit: int = 5,
    delay_steps_s: Iterable[int] = DELAY_STEPS_S,
) -> Topology:
    """The whole topology; the same inputs always give the same data (declare is idempotent)."""
    channels = tuple(channels)
    steps = tuple(sorted(set(delay_steps_s)))
    exchanges = [
        ExchangeSpec(INTENTS_EXCHANGE, "topic", {"alternate-exchange": UNROUTED_EXCHANGE}),
        ExchangeSpec(UNROUTED_EXCHANGE, "fanout"),
        ExchangeSpec(DEAD_LETTER_EXCHANGE, "direct"),
        ExchangeSpec(RECEIPTS_EXCHANGE, "topic"),
    ]
    queues = [
        QueueSpec(UNROUTED_QUEUE, {"x-queue-type": "quorum"}, (Binding(UNROUTED_EXCHANGE, ""),)),
        QueueSpec(
            RECEIPTS_FEED_QUEUE,
            {
                "x-queue-type": "quorum",
                "x-max-length": RECEIPTS_FEED_MAX_LENGTH,
                "x-overflow": "drop-head",
            },
            (Binding(RECEIPTS_EXCHANGE, "#"),),
        ),
    ]
    for channel in channels:
        queues.append(
            QueueSpec(
                work_queue(channel),
                {
                    "x-queue-type": "quorum",
                    "x-delivery-limit": delivery_limit,
                    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                },
                (Binding(INTENTS_EXCHANGE, channel.value),),
            )
        )
        queues.append(dead_queue_spec(channel))
    for step in steps:
        exchanges.append(ExchangeSpec(delay_exchange(step), "fanout"))
        queues.append(
            QueueSpec(
                delay_exchange(step),
                {
                    "x-queue-type": "quorum",
                    "x-message-ttl": step * 1000,
                    "x-dead-letter-exchange": INTENTS_EXCHANGE,
                },
                (Binding(delay_exchange(step), ""),),
            )
        )
    return Topology(tuple(exchanges), tuple(queues))
