"""A list of broker URLs (a RabbitMQ cluster's nodes): parsing, masking, and the order in which
workers and publishers try the nodes on every (re)connect."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dunning.broker import open_async_broker, open_publisher
from dunning.broker.rabbitmq_async import RabbitAsyncBroker
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.urls import BrokerRotation, broker_urls, masked_url, split_broker_urls
from dunning.errors import BrokerConnectionError, ConfigError
from dunning.ops.queue_status import management_url
from dunning.settings import Settings

NODE1 = "amqp://dunning:pw-one@mq1:5672/prod"
NODE2 = "amqp://dunning:pw-two@mq2:5672/prod"
NODE3 = "amqp://dunning:pw-three@mq3:5672/prod"


def test_one_url_is_a_list_of_one() -> None:
    assert broker_urls(NODE1) == (NODE1,)
    assert broker_urls("memory://") == ("memory://",)


def test_a_comma_separated_list_keeps_its_order_and_drops_spaces() -> None:
    assert broker_urls(f"{NODE1},{NODE2}, {NODE3} ") == (NODE1, NODE2, NODE3)
    assert broker_urls(f"{NODE1};{NODE2}") == (NODE1, NODE2)  # kombu's separator


def test_a_comma_inside_a_password_does_not_split_the_list() -> None:
    odd = "amqp://dunning:pa,ss@mq1:5672/prod"
    assert broker_urls(f"{odd},{NODE2}") == (odd, NODE2)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (f",{NODE1}", "URL 1 of 2 is empty"),
        (f"{NODE1},,{NODE2}", "URL 1 of 2 (amqp://dunning:***@mq1:5672/prod,) is followed by"),
        (f"{NODE1},", "is followed by an empty entry"),
        (f"{NODE1},redis://:secret@cache:6379", "URL 2 of 2 must start with memory://, amqp://"),
        ("amqp://dunning:pw;one@mq1:5672/prod", "(amqp://dunning:***@mq1:5672/prod) contains ';'"),
        (f"memory://,{NODE1}", "URL 1 of 2 is memory://, which is one in-process broker"),
        ("localhost:5672", "DUNNING_BROKER_URL (or --broker) must start with"),
        (
            "amqp://dunning:pw-one@mq1,mq2:5672/prod",
            "(amqp://dunning:***@mq1,mq2:5672/prod) has a ',' after its host",
        ),
    ],
)
def test_a_bad_list_names_the_entry_and_never_its_password(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        broker_urls(text)
    assert says in str(caught.value)
    for password in ("pw-one", "pw;one", "pw-two", "secret"):
        assert password not in str(caught.value)


def test_open_refuses_a_bad_list_before_connecting() -> None:
    with pytest.raises(ConfigError, match="URL 1 of 2 is memory://"):
        open_publisher(f"memory://,{NODE1}")  # memory:// alone would open at once
    with pytest.raises(ConfigError, match="has a ',' after its host"):
        open_async_broker(f"{NODE1},mq2:5672")


def test_every_url_of_a_list_is_masked() -> None:
    text = f"{NODE1},amqp://guest@mq2/%2F,amqps://u:p@ss,w@mq3:5671/prod"
    assert masked_url(text) == (
        "amqp://dunning:***@mq1:5672/prod,amqp://guest@mq2/%2F,amqps://u:***@mq3:5671/prod"
    )
    assert split_broker_urls(masked_url(text))[2] == "amqps://u:***@mq3:5671/prod"


def test_settings_show_every_node_of_the_list_with_its_password_masked() -> None:
    settings = Settings.from_env({"DUNNING_BROKER_URL": f"{NODE1},{NODE2},{NODE3}"})
    assert settings.masked()["broker_url"] == (
        "amqp://dunning:***@mq1:5672/prod,amqp://dunning:***@mq2:5672/prod,"
        "amqp://dunning:***@mq3:5672/prod"
    )


def test_status_asks_the_management_api_of_the_first_node() -> None:
    assert management_url(f"{NODE1},{NODE2}") == "http://mq1:15672"


def _order(rotation: BrokerRotation) -> list[int]:
    return [index for index, _ in rotation.order()]


def test_rotation_starts_at_the_first_url_and_moves_past_each_connected_one() -> None:
    rotation = BrokerRotation((NODE1, NODE2, NODE3))
    assert _order(rotation) == [0, 1, 2]
    rotation.connected(0)
    assert _order(rotation) == [1, 2, 0]  # lost node 1: node 2 first, node 1 last
    rotation.connected(2)  # nodes 2 was down too; node 3 took the connection
    assert _order(rotation) == [0, 1, 2]
    assert [url for _, url in rotation.order()] == [NODE1, NODE2, NODE3]


def test_a_round_where_every_url_failed_starts_the_next_round_at_the_same_place() -> None:
    rotation = BrokerRotation((NODE1, NODE2, NODE3))
    rotation.connected(0)
    for _ in range(3):
        assert _order(rotation) == [1, 2, 0]  # nothing connected: nothing moves


def test_one_url_is_always_tried_alone() -> None:
    rotation = BrokerRotation((NODE1,))
    rotation.connected(0)
    assert _order(rotation) == [0]


@pytest.fixture
def refused_ports() -> Iterator[tuple[int, int]]:
    """Two local ports that are bound but not listening: connections to them are refused."""
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        yield first.getsockname()[1], second.getsockname()[1]


def _refused_urls(ports: tuple[int, int]) -> tuple[str, str]:
    return tuple(f"amqp://guest:hidden@127.0.0.1:{port}/%2F" for port in ports)  # type: ignore[return-value]


async def test_the_worker_side_tries_every_node_in_turn_and_names_each(
    refused_ports: tuple[int, int],
) -> None:
    first, second = _refused_urls(refused_ports)
    broker = RabbitAsyncBroker(f"{first},{second}")
    with pytest.raises(BrokerConnectionError) as caught:
        await broker.connect()
    message = str(caught.value)
    assert message.startswith("none of the 2 brokers answered: connection refused by ")
    assert message.index(masked_url(first)) < message.index(masked_url(second))
    assert "hidden" not in message


def test_the_publisher_side_tries_every_node_in_turn_and_names_each(
    refused_ports: tuple[int, int],
) -> None:
    first, second = _refused_urls(refused_ports)
    with pytest.raises(BrokerConnectionError) as caught:
        RabbitPublisher(f"{first},{second}", connect_timeout_s=5)
    message = str(caught.value)
    assert message.startswith("connect: none of the 2 brokers answered: ")
    assert message.index(masked_url(first)) < message.index(masked_url(second))
    assert "hidden" not in message
