"""The broker contract on a real RabbitMQ, in a vhost of its own, emptied before every case."""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from dunning.broker.base import AsyncBroker, Publisher
from dunning.broker.rabbitmq_async import RabbitAsyncBroker
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import DELAY_STEPS_S, Topology, build_topology, delay_exchange
from tests.broker_contract import (  # noqa: F401 -- imported test functions are collected here
    TOPOLOGY,
    test_async_publish_with_confirm,
    test_confirmed_message_is_consumed_exactly_once,
    test_declare_twice_is_a_no_op_and_mismatch_is_named,
    test_delayed_message_waits_then_returns_to_its_work_queue,
    test_poison_message_dead_letters_past_delivery_limit,
    test_prefetch_bounds_unacked_and_consumers_share_a_queue,
    test_reject_without_requeue_dead_letters_with_reason,
    test_unacked_message_is_redelivered_after_connection_loss,
    test_unknown_routing_key_goes_to_unrouted,
    test_unroutable_or_unknown_exchange_raises_publish_error,
)
from tests.services import RABBITMQ_URL, require

pytestmark = pytest.mark.integration
VHOST = "dunning-contract"


def _vhost_url() -> str:
    """A dedicated vhost when rabbitmqctl can make one (others' queues stay untouched);
    otherwise the configured vhost, whose dunning.* queues the cases then delete."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return RABBITMQ_URL
    user = urlsplit(RABBITMQ_URL).username or "guest"
    for args in (["add_vhost", VHOST], ["set_permissions", "-p", VHOST, user, ".*", ".*", ".*"]):
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 and "already exists" not in done.stderr + done.stdout:
            return RABBITMQ_URL
    parts = urlsplit(RABBITMQ_URL)
    return urlunsplit(parts._replace(path="/" + quote(VHOST, safe="")))


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    require("rabbitmq")
    return _vhost_url()


def _empty(url: str) -> None:
    everything = build_topology(delay_steps_s=DELAY_STEPS_S)
    admin = RabbitPublisher(url)
    try:
        for queue in everything.queues:
            admin.delete_queue(queue.name)
        for exchange in everything.exchanges:
            admin.delete_exchange(exchange.name)
        admin.delete_exchange(delay_exchange(1))
    finally:
        admin.close()


class RabbitHarness:
    topology: Topology = TOPOLOGY

    def __init__(self, url: str) -> None:
        self.url = url
        _empty(url)
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
