"""Dead-letter queues on a real RabbitMQ: reading one many times keeps it as it was, and
`dunning topology declare` turns an older quorum dead-letter queue into a classic one.

Each test has a vhost of its own. RabbitMQ 4 gives a quorum queue without ``x-delivery-limit``
a limit of 20; the broker here may be older, so a ``delivery-limit`` policy of 20 stands in for
that default (classic queues ignore it).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from dunning.broker.base import OutboundMessage
from dunning.broker.dead_queue_migration import holding_queue
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    QueueSpec,
    Topology,
    build_topology,
    dead_queue,
)
from dunning.cli.main import app
from dunning.errors import BrokerError
from dunning.intents import Channel, encode_intent
from dunning.workers import headers as h
from dunning.workers.dlq import DeadLetterFilter, find_dead_letter, summarize_dead_letters
from tests.factories import make_intent
from tests.services import rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.integration

SMS_DEAD = dead_queue(Channel.SMS)
RABBITMQ_4_DEFAULT_LIMIT = 20


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _vhost(name: str) -> str:
    url = rabbitmq_vhost_url(name)
    reset_rabbitmq_topology(url)
    admin = RabbitPublisher(url)
    try:
        for channel in Channel:  # left by a run that stopped mid-migration
            admin.delete_queue(holding_queue(channel))
    finally:
        admin.close()
    ctl = shutil.which("rabbitmqctl")
    if ctl is not None and url.endswith(name):
        policy = f'{{"delivery-limit": {RABBITMQ_4_DEFAULT_LIMIT}}}'
        subprocess.run(
            [ctl, "set_policy", "-p", name, "default-limit", r"^dunning\.", policy,
             "--apply-to", "queues"],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
    return url


def _dead_letter(reason: str) -> OutboundMessage:
    intent = make_intent(Channel.SMS)
    headers = h.dead_letter_headers(
        {},
        error_class="PermanentChannelError",
        reason=reason,
        provider_code="21211",
        attempts=1,
        now=datetime.now(UTC),
        queue="dunning.sms",
    )
    return OutboundMessage(
        DEAD_LETTER_EXCHANGE, "sms", encode_intent(intent), headers, intent.intent_id
    )


def _drain(url: str, queue: str) -> list[tuple[bytes, dict[str, Any], str | None]]:
    publisher = RabbitPublisher(url)
    try:
        out = []
        while (d := publisher.get(queue)) is not None:
            out.append((d.body, dict(d.headers), d.message_id))
            publisher.ack(d)
        return out
    finally:
        publisher.close()


def _declare(url: str) -> str:
    result = CliRunner().invoke(app, ["topology", "declare", "--broker", url])
    assert result.exit_code == 0, result.output
    return result.output


def test_reading_a_dead_letter_25_times_keeps_it_and_its_headers() -> None:
    url = _vhost("dunning-dlq-inspect")
    _declare(url)
    letter = _dead_letter("invalid number")
    publisher = RabbitPublisher(url)
    try:
        publisher.publish_many([letter])
    finally:
        publisher.close()

    for _ in range(25):  # each look is its own connection, as each command is
        reader = RabbitPublisher(url)
        try:
            assert summarize_dead_letters(reader, DeadLetterFilter()).total == 1
            found = find_dead_letter(reader, letter.message_id or "", DeadLetterFilter())
            assert found is not None
            assert "x-delivery-count" not in found.headers
        finally:
            reader.close()

    ((body, headers, message_id),) = _drain(url, SMS_DEAD)
    assert (body, message_id) == (letter.body, letter.message_id)
    assert headers == dict(letter.headers)


def test_declare_moves_an_old_quorum_dead_letter_queue_into_a_classic_one() -> None:
    url = _vhost("dunning-dlq-migrate")
    old = build_topology()
    quorum_dead = tuple(
        QueueSpec(q.name, {"x-queue-type": "quorum"}, q.bindings) if q.name.endswith(".dead") else q
        for q in old.queues
    )
    letters = [_dead_letter(f"reason {n}") for n in range(3)]
    publisher = RabbitPublisher(url)
    try:
        publisher.declare(Topology(old.exchanges, quorum_dead))
        publisher.publish_many(letters)
    finally:
        publisher.close()

    output = _declare(url)
    assert f"{SMS_DEAD}: moved 3 dead letter(s) out of the quorum queue" in output
    again = _declare(url)  # now a no-op
    assert "moved" not in again

    publisher = RabbitPublisher(url)
    try:
        publisher.declare(build_topology())  # the classic queue is what the topology wants
        with pytest.raises(BrokerError):
            publisher.queue_depth(holding_queue(Channel.SMS))
        # A migration stopped part-way leaves the holding queue bound: the next declare ends it.
        publisher.declare(
            Topology(
                old.exchanges,
                (QueueSpec(holding_queue(Channel.SMS), {"x-queue-type": "classic"},
                           build_topology().queue(SMS_DEAD).bindings),),
            )
        )  # fmt: skip
        late = _dead_letter("died while migrating")
        publisher.publish_many([late])  # lands in both: the dead queue and the holding queue
    finally:
        publisher.close()
    _declare(url)

    moved = _drain(url, SMS_DEAD)
    assert [(body, message_id) for body, _, message_id in moved] == [
        (m.body, m.message_id) for m in [*letters, late, late]
    ]
    for (_, headers, _), sent in zip(moved, [*letters, late, late], strict=True):
        assert {k: v for k, v in headers.items() if k.startswith("x-dunning-")} == dict(
            sent.headers
        )
    publisher = RabbitPublisher(url)
    try:
        with pytest.raises(BrokerError):
            publisher.queue_depth(holding_queue(Channel.SMS))
    finally:
        publisher.close()
