"""A broker that cannot be reached: one clear reason per failure, and what the worker does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika.exceptions
import pytest
from pika.adapters.utils.connection_workflow import (
    AMQPConnectionWorkflowFailed,
    AMQPConnectorSocketConnectError,
)
from structlog.testing import capture_logs

from dunning.broker.base import Delivery, Handler, OutboundMessage
from dunning.broker.rabbitmq_async import RabbitAsyncBroker
from dunning.broker.rabbitmq_connect import connect_failure, masked_url
from dunning.broker.topology import Topology
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import SystemClock
from dunning.errors import BrokerAccessRefusedError, BrokerConnectionError
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.runtime import Worker

URL = "amqp://dunning:s3cret@mq.internal:5672/%2F"
MASKED = "amqp://dunning:***@mq.internal:5672/%2F"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (URL, MASKED),
        ("amqps://u:p@ss:w@h:5671/prod?heartbeat=30", "amqps://u:***@h:5671/prod?heartbeat=30"),
        ("amqp://guest@localhost/%2F", "amqp://guest@localhost/%2F"),
        ("amqp://localhost", "amqp://localhost"),
    ],
)
def test_masked_url_hides_only_the_password(url: str, masked: str) -> None:
    assert masked_url(url) == masked


def _workflow_failed(cause: BaseException) -> pika.exceptions.AMQPConnectionError:
    """What pika hands the open-error callback when the socket could not connect."""
    return pika.exceptions.AMQPConnectionError(
        AMQPConnectionWorkflowFailed([AMQPConnectorSocketConnectError(cause)])
    )


def test_refused_login_and_vhost_are_access_errors_naming_the_fix() -> None:
    login = connect_failure(
        pika.exceptions.ProbableAuthenticationError(
            "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused'"
        ),
        URL,
    )
    assert isinstance(login, BrokerAccessRefusedError)
    assert str(login) == (
        f"authentication refused by {MASKED}: check DUNNING_BROKER_URL (or --broker) "
        "user and password"
    )
    vhost = connect_failure(
        pika.exceptions.ProbableAccessDeniedError("(530) 'NOT_ALLOWED - vhost x not found'"), URL
    )
    assert isinstance(vhost, BrokerAccessRefusedError)
    assert f"access to the virtual host refused by {MASKED}" in str(vhost)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (
            _workflow_failed(ConnectionRefusedError(111, "Connection refused")),
            f"connection refused by {MASKED}: is RabbitMQ running on that port?",
        ),
        (
            _workflow_failed(socket.gaierror(-2, "Name or service not known")),
            f"cannot resolve the host of {MASKED}",
        ),
        (
            pika.exceptions.IncompatibleProtocolError("StreamLostError: EOF"),
            f"{MASKED} did not answer as an AMQP 0-9-1 broker",
        ),
        (_workflow_failed(TimeoutError("timed out")), f"no answer from {MASKED}"),
    ],
)
def test_other_failures_stay_retryable_and_say_what_is_wrong(
    error: BaseException, says: str
) -> None:
    failure = connect_failure(error, URL)
    assert type(failure) is BrokerConnectionError
    assert says in str(failure)
    assert "s3cret" not in str(failure)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A local port that is bound but not listening: every connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


async def _never_send(intent: ContactIntent, attempt: int) -> SendResult:
    raise AssertionError("nothing may be sent without a broker")


def _worker(tmp_path: Path, broker: Any) -> tuple[Worker, Ledger]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    parts = WorkerParts(
        channel=Channel.SMS,
        adapter=CallbackChannel(Channel.SMS, _never_send),
        ledger=ledger,
        clock=SystemClock(),
        broker=broker,
    )
    worker = build_worker(Settings(), parts, declare=False)
    worker.reconnect_max_wait_s = 0.2
    return worker, ledger


async def test_a_refused_port_is_retried_with_one_clear_line_per_attempt(
    tmp_path: Path, refused_port: int
) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{refused_port}/%2F"
    worker, ledger = _worker(tmp_path, RabbitAsyncBroker(url))
    with capture_logs() as logs:
        task = asyncio.create_task(worker.run())

        def unreachable() -> list[dict[str, Any]]:
            return [e for e in logs if e["event"] == "broker.unreachable"]

        async with asyncio.timeout(30):
            while len(unreachable()) < 3:  # noqa: ASYNC110  the events come from tenacity's hook
                await asyncio.sleep(0.02)
        worker.stop()
        assert await asyncio.wait_for(task, timeout=30) == 0
    ledger.close()
    lines = unreachable()
    assert [e["attempt"] for e in lines[:3]] == [1, 2, 3]
    for event in lines:
        assert event["reason"] == (
            f"connection refused by amqp://guest:***@127.0.0.1:{refused_port}/%2F: "
            "is RabbitMQ running on that port?"
        )
        assert event["retry_in_s"] >= 0
    assert not worker.ready.is_set()


class _RefusingBroker:
    """An AsyncBroker whose every connection is refused at login."""

    def __init__(self) -> None:
        self.connects = 0

    async def connect(self) -> None:
        self.connects += 1
        raise BrokerAccessRefusedError("authentication refused by amqp://guest:***@mq/%2F")

    async def declare(self, topology: Topology) -> None: ...
    async def consume(self, queue: str, *, prefetch: int, handler: Handler) -> None: ...
    async def cancel(self) -> None: ...
    async def wait_closed(self) -> None: ...
    async def ack(self, delivery: Delivery) -> None: ...
    async def reject(self, delivery: Delivery, *, requeue: bool) -> None: ...
    async def publish(self, message: OutboundMessage) -> None: ...
    async def close(self) -> None: ...


async def test_a_refused_login_ends_the_worker_without_retrying(tmp_path: Path) -> None:
    broker = _RefusingBroker()
    worker, ledger = _worker(tmp_path, broker)
    with capture_logs() as logs, pytest.raises(BrokerAccessRefusedError, match="authentication"):
        await asyncio.wait_for(worker.run(), timeout=30)
    ledger.close()
    assert broker.connects == 1
    assert [e for e in logs if e["event"] == "broker.unreachable"] == []
