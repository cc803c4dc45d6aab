"""The broker contract on a real RabbitMQ, in a vhost of its own, emptied before every case."""

from __future__ import annotations

import pytest

from dunning.broker.base import AsyncBroker, Publisher
from dunning.broker.rabbitmq_async import RabbitAsyncBroker
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import Topology
from tests.broker_contract import (  # noqa: F401 -- imported test functions are collected here
    TOPOLOGY,
    test_async_publish_with_confirm,
    test_confirmed_message_is_consumed_exactly_once,
    test_declare_twice_is_a_no_op_and_mismatch_is_named,
    test_delayed_message_waits_then_returns_to_its_work_queue,
    test_every_receipt_lands_in_the_receipts_feed,
    test_poison_message_dead_letters_past_delivery_limit,
    test_prefetch_bounds_unacked_and_consumers_share_a_queue,
    test_reject_without_requeue_dead_letters_with_reason,
    test_unacked_message_is_redelivered_after_connection_loss,
    test_unknown_routing_key_goes_to_unrouted,
    test_unroutable_or_unknown_exchange_raises_publish_error,
)
from tests.services import rabbitmq_vhost_url, require, reset_rabbitmq_topology

pytestmark = pytest.mark.integration
VHOST = "dunning-contract"


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return rabbitmq_vhost_url(VHOST)


class RabbitHarness:
    topology: Topology = TOPOLOGY

    def __init__(self, url: str) -> None:
        self.url = url
        reset_rabbitmq_topology(url)
        admin = RabbitPublisher(url)
        admin.declare(self.topology)
        admin.close()

    def publisher(self) -> Publisher:
        return RabbitPublisher(self.url)

    def client(self) -> AsyncBroker:
        return RabbitAsyncBroker(self.url)

    def drop(self, client: AsyncBroker) -> None:
        assert isinstance(client, RabbitAsyncBroker)
        client.simulate_connection_loss()


@pytest.fixture
def harness(rabbitmq_url: str) -> RabbitHarness:
    require("rabbitmq")
    return RabbitHarness(rabbitmq_url)
