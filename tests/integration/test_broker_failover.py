"""A broker URL list on a real RabbitMQ: two vhosts stand in for two cluster nodes (a message
shows which one a client is connected to), and a bound port that is not listening for a node
that is down. Clients skip the dead node, and after losing their connection move on to the next
node of the list, the publisher publishing its batch again there. Messages the broker nacks (as
a quorum queue does while it elects a new leader) are published again after a pause.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_async import RabbitAsyncBroker
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import (
    INTENTS_EXCHANGE,
    QueueSpec,
    Topology,
    build_topology,
    work_queue,
)
from dunning.errors import BrokerConnectionError, PublishError
from dunning.intents import Channel
from tests.services import rabbitmq_vhost_url, require, reset_rabbitmq_topology, unavailable

pytestmark = pytest.mark.integration
SMS = work_queue(Channel.SMS)
#: A queue that takes one message and nacks the next while it is full.
ONE_SLOT = "dunning-test.one-slot"
ONE_SLOT_TOPOLOGY = Topology(
    (), (QueueSpec(ONE_SLOT, {"x-max-length": 1, "x-overflow": "reject-publish"}),)
)


def _message(body: bytes) -> OutboundMessage:
    return OutboundMessage(exchange=INTENTS_EXCHANGE, routing_key="sms", body=body, headers={})


def _fresh(url: str) -> str:
    reset_rabbitmq_topology(url)
    admin = RabbitPublisher(url)
    admin.declare(build_topology())
    admin.close()
    return url


def _depth(url: str) -> int:
    admin = RabbitPublisher(url)
    try:
        return admin.queue_depth(SMS)
    finally:
        admin.close()


@pytest.fixture
def nodes() -> Iterator[tuple[str, str, str]]:
    """(down, node A, node B): a refused URL, then two vhosts with fresh topologies."""
    require("rabbitmq")
    first = _fresh(rabbitmq_vhost_url("dunning-test-failover-a"))
    second = _fresh(rabbitmq_vhost_url("dunning-test-failover-b"))
    if first == second:
        unavailable("rabbitmqctl cannot make vhosts here: two nodes cannot be told apart")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        down = f"amqp://guest:guest@127.0.0.1:{held.getsockname()[1]}/%2F"
        yield down, first, second


def _close_connections_of(url: str) -> None:
    """Have RabbitMQ close every connection to ``url``'s vhost, as a node going away would."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        unavailable("rabbitmqctl is not installed")
    vhost = unquote(urlsplit(url).path.lstrip("/")) or "/"
    done = subprocess.run(
        [ctl, "close_all_connections", "--vhost", vhost, "failover test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_publisher_skips_a_dead_node_and_republishes_a_lost_batch_on_the_next(
    nodes: tuple[str, str, str],
) -> None:
    down, node_a, node_b = nodes
    publisher = RabbitPublisher(f"{down},{node_a},{node_b}")
    try:
        assert publisher.publish_many([_message(b"first")]) == 1
        assert (_depth(node_a), _depth(node_b)) == (1, 0)  # the dead node was passed over

        _close_connections_of(node_a)
        assert publisher.publish_many([_message(b"second"), _message(b"third")]) == 2
        assert publisher.failovers == 1
        assert (_depth(node_a), _depth(node_b)) == (1, 2)  # node B, not node A again
    finally:
        publisher.close()


def test_one_url_loses_its_batch_as_before(nodes: tuple[str, str, str]) -> None:
    _, node_a, _ = nodes
    publisher = RabbitPublisher(node_a)
    try:
        publisher.publish_many([_message(b"first")])
        _close_connections_of(node_a)
        with pytest.raises(BrokerConnectionError):
            publisher.publish_many([_message(b"second")])
        assert publisher.failovers == 0
        assert publisher.publish_many([_message(b"third")]) == 1  # and reconnects after
    finally:
        publisher.close()
    assert _depth(node_a) == 2


async def test_the_worker_side_skips_a_dead_node_and_reconnects_to_the_next(
    nodes: tuple[str, str, str],
) -> None:
    down, node_a, node_b = nodes
    broker = RabbitAsyncBroker(f"{down},{node_a},{node_b}")
    await broker.connect()
    await broker.publish(_message(b"first"))
    assert (_depth(node_a), _depth(node_b)) == (1, 0)

    broker.simulate_connection_loss()
    with pytest.raises(BrokerConnectionError):
        await broker.wait_closed()
    await broker.connect()  # node A still answers, but the rotation goes on to node B
    await broker.publish(_message(b"second"))
    await broker.close()
    assert (_depth(node_a), _depth(node_b)) == (1, 1)


@pytest.fixture
def one_slot(nodes: tuple[str, str, str]) -> Iterator[RabbitPublisher]:
    """An admin connection to node A with an empty one-slot queue declared."""
    admin = RabbitPublisher(nodes[1])
    admin.delete_queue(ONE_SLOT)
    admin.declare(ONE_SLOT_TOPOLOGY)
    try:
        yield admin
    finally:
        admin.delete_queue(ONE_SLOT)
        admin.close()


def _slot_message(body: bytes) -> OutboundMessage:
    return OutboundMessage(exchange="", routing_key=ONE_SLOT, body=body, headers={})


def test_nacked_messages_are_published_again_after_a_pause(
    nodes: tuple[str, str, str], one_slot: RabbitPublisher
) -> None:
    pauses: list[float] = []

    def make_room(seconds: float) -> None:
        pauses.append(seconds)
        taken = one_slot.get(ONE_SLOT)
        assert taken is not None
        one_slot.ack(taken)

    publisher = RabbitPublisher(nodes[1], pause=make_room)
    try:
        assert publisher.publish_many([_slot_message(b"first"), _slot_message(b"second")]) == 2
    finally:
        publisher.close()
    assert pauses == [0.5]  # "second" was nacked once, then taken
    assert publisher.nack_retries == 1
    left = one_slot.get(ONE_SLOT)
    assert left is not None
    assert left.body == b"second"


def test_messages_nacked_after_every_retry_fail_the_batch(
    nodes: tuple[str, str, str], one_slot: RabbitPublisher
) -> None:
    pauses: list[float] = []
    publisher = RabbitPublisher(nodes[1], nack_retry_waits_s=(0.1, 0.2), pause=pauses.append)
    try:
        with pytest.raises(PublishError, match=r"^1 message\(s\) nacked by the broker, still"):
            publisher.publish_many([_slot_message(b"first"), _slot_message(b"second")])
    finally:
        publisher.close()
    assert pauses == [0.1, 0.2]


def test_a_batch_nacked_twice_on_one_node_is_published_on_the_next(
    nodes: tuple[str, str, str], one_slot: RabbitPublisher
) -> None:
    _, node_a, node_b = nodes
    other = RabbitPublisher(node_b)
    other.delete_queue(ONE_SLOT)
    other.declare(ONE_SLOT_TOPOLOGY)
    pauses: list[float] = []
    publisher = RabbitPublisher(f"{node_a},{node_b}", pause=pauses.append)
    try:
        assert publisher.publish_many([_slot_message(b"first"), _slot_message(b"second")]) == 2
        moved = other.get(ONE_SLOT)
        assert moved is not None
        other.ack(moved)
    finally:
        publisher.close()
        other.delete_queue(ONE_SLOT)
        other.close()
    assert pauses == [0.5, 1.0]  # node A nacked "second" twice, node B took it
    assert moved.body == b"second"
    kept = one_slot.get(ONE_SLOT)
    assert kept is not None
    assert kept.body == b"first"
