"""Move a quorum dead-letter queue's messages into a classic one of the same name.

Dead-letter queues were quorum queues; they are classic now (the reason is in
:mod:`dunning.broker.topology`). A queue's type cannot change in place, so an existing
``dunning.<channel>.dead`` is replaced, per channel, through a holding queue, with a queue bound
to ``dunning.dlx`` at every moment (workers keep dead-lettering while it runs):

1. declare the classic holding queue ``dunning.<channel>.dead.migrating``, bound to
   ``dunning.dlx``: new dead letters land there from now on;
2. unbind the quorum queue, move its messages to the holding queue (each published with a
   confirm, then acked), and delete it once a ``get`` finds it empty;
3. declare the classic ``dunning.<channel>.dead``, bound;
4. unbind the holding queue, move its messages on, and delete it once empty.

A message is acked only after its copy is confirmed, so a crash loses nothing; it can leave one
message in both queues (a duplicate dead letter, harmless: the ledger sends an intent at most
once). Running it again resumes where it stopped. Between steps 1 and 2 a dead letter can reach
both queues for the same reason. Moved messages keep body, headers (``x-death`` included) and
message id; the broker's ``x-delivery-count`` is dropped. Dead letters that arrive during the
move are queued after the moved ones.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    Binding,
    ExchangeSpec,
    QueueSpec,
    Topology,
    dead_queue,
    dead_queue_spec,
)
from dunning.errors import BrokerError, TopologyMismatchError
from dunning.intents import Channel

__all__ = ["declare_migrating", "holding_queue", "migrate_dead_queue", "needs_migration"]

log = structlog.get_logger(__name__)

Report = Callable[[str], None]
_DLX = ExchangeSpec(DEAD_LETTER_EXCHANGE, "direct")
#: Headers the broker sets on a delivery; a moved copy starts without them.
_BROKER_HEADERS = ("x-delivery-count",)


def holding_queue(channel: Channel | str) -> str:
    return f"{dead_queue(channel)}.migrating"


def needs_migration(error: BaseException) -> Channel | None:
    """The channel whose dead-letter queue is an old quorum queue, when ``error`` says so."""
    if not isinstance(error, TopologyMismatchError) or error.argument != "x-queue-type":
        return None
    for channel in Channel:
        if error.name == dead_queue(channel) and error.wanted == "classic":
            return channel
    return None


def migrate_dead_queue(
    publisher: RabbitPublisher, channel: Channel, *, report: Report | None = None
) -> int:
    """Replace ``channel``'s dead-letter queue by a classic one; returns messages moved in.

    Safe to run on a queue that is classic already (it finishes an interrupted migration).
    """
    say = report or (lambda _: None)
    dead, holding = dead_queue(channel), holding_queue(channel)
    holding_spec = QueueSpec(
        holding, {"x-queue-type": "classic"}, (Binding(DEAD_LETTER_EXCHANGE, channel.value),)
    )
    publisher.declare(Topology((_DLX,), (holding_spec,)))
    try:
        publisher.declare(Topology((_DLX,), (dead_queue_spec(channel),)))
    except TopologyMismatchError as exc:
        if needs_migration(exc) is not channel:
            raise
        publisher.unbind_queue(dead, DEAD_LETTER_EXCHANGE, channel.value)
        moved = _move(publisher, dead, holding)
        publisher.delete_queue(dead)  # quorum queues refuse if-empty; _move emptied it, unbound
        publisher.fresh_channel()  # the old channel would still route to it as a quorum queue
        say(f"{dead}: moved {moved} dead letter(s) out of the quorum queue and deleted it")
        publisher.declare(Topology((_DLX,), (dead_queue_spec(channel),)))
    publisher.unbind_queue(holding, DEAD_LETTER_EXCHANGE, channel.value)
    moved_back = _move(publisher, holding, dead)
    publisher.delete_queue(holding)
    if moved_back:
        say(f"{dead}: now a classic queue holding {moved_back} dead letter(s)")
    log.info("dead-letter queue migrated", queue=dead, moved=moved_back)
    return moved_back


def _move(publisher: RabbitPublisher, source: str, target: str) -> int:
    """Copy every message of ``source`` to ``target`` (confirmed), acking each after its copy."""
    moved = 0
    while (delivery := publisher.get(source)) is not None:
        headers = {k: v for k, v in delivery.headers.items() if k not in _BROKER_HEADERS}
        publisher.publish_many(
            [OutboundMessage("", target, delivery.body, headers, delivery.message_id)]
        )
        publisher.ack(delivery)
        moved += 1
    return moved


def declare_migrating(
    publisher: RabbitPublisher, topology: Topology, *, report: Report | None = None
) -> None:
    """Declare ``topology``, first migrating any dead-letter queue that is still quorum and
    finishing any migration a crash interrupted (a holding queue left behind)."""
    for _ in range(len(Channel) + 1):
        try:
            publisher.declare(topology)
            break
        except TopologyMismatchError as exc:
            channel = needs_migration(exc)
            if channel is None:
                raise
            migrate_dead_queue(publisher, channel, report=report)
    for channel in Channel:
        if _exists(publisher, holding_queue(channel)):
            migrate_dead_queue(publisher, channel, report=report)


def _exists(publisher: RabbitPublisher, queue: str) -> bool:
    try:
        publisher.queue_depth(queue)  # a passive declare: the broker refuses a missing queue
    except BrokerError:
        return False
    return True
