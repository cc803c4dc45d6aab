"""The topology data, RabbitMQ's refusal text parsed, and `dunning topology declare/show`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from typer.testing import CliRunner

from dunning.broker import reset_memory_server
from dunning.broker.rabbitmq import mismatch_from_reply, plain_headers
from dunning.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    INTENTS_EXCHANGE,
    RECEIPTS_EXCHANGE,
    RECEIPTS_FEED_MAX_LENGTH,
    RECEIPTS_FEED_QUEUE,
    Binding,
    build_topology,
    dead_queue,
    delay_exchange,
    delay_hop_s,
    work_queue,
)
from dunning.cli.main import app
from dunning.errors import BrokerError, TopologyMismatchError
from dunning.intents import Channel

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points structlog at the runner's stream, which closes after each invoke."""
    yield
    structlog.reset_defaults()


def test_build_topology_is_deterministic_and_complete() -> None:
    topology = build_topology(delivery_limit=3)
    assert topology == build_topology(delivery_limit=3)
    sms = topology.queue(work_queue("sms"))
    assert sms.arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 3,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    }
    assert topology.queue(dead_queue("letter")).bindings[0].exchange == DEAD_LETTER_EXCHANGE
    assert topology.queue(delay_exchange(5)).message_ttl_ms == 5000
    assert topology.exchange(INTENTS_EXCHANGE).arguments["alternate-exchange"]


def test_receipts_feed_is_a_bounded_quorum_queue_bound_to_every_receipt() -> None:
    feed = build_topology().queue(RECEIPTS_FEED_QUEUE)
    assert feed.arguments == {
        "x-queue-type": "quorum",
        "x-max-length": RECEIPTS_FEED_MAX_LENGTH,
        "x-overflow": "drop-head",
    }
    assert feed.bindings == (Binding(RECEIPTS_EXCHANGE, "#"),)
    assert build_topology().exchange(RECEIPTS_EXCHANGE).type == "topic"


def test_declare_lists_the_receipts_feed() -> None:
    reset_memory_server()
    result = runner.invoke(app, ["topology", "declare", "--broker", "memory://"])
    assert result.exit_code == 0, result.output
    assert f"queue    {RECEIPTS_FEED_QUEUE} <- {RECEIPTS_EXCHANGE}[#]" in result.output


@pytest.mark.parametrize(
    ("wait_s", "hop_s"), [(0.2, 1), (1, 1), (4.9, 1), (5, 5), (59, 30), (10**6, 14400)]
)
def test_delay_hop_is_the_largest_step_not_longer(wait_s: float, hop_s: int) -> None:
    assert delay_hop_s(wait_s) == hop_s


def test_mismatch_reply_names_queue_argument_and_values() -> None:
    reply = (
        "PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue 'dunning.sms' in "
        "vhost '/': received the value '3' of type 'signedint' but current is the value '5' "
        "of type 'signedint'"
    )
    error = mismatch_from_reply(reply)
    assert isinstance(error, TopologyMismatchError)
    assert (error.name, error.argument, error.existing, error.wanted) == (
        "dunning.sms",
        "x-delivery-limit",
        "5",
        "3",
    )
    missing = mismatch_from_reply(
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'dunning.email' in "
        "vhost 'prod': received the value 'quorum' of type 'longstr' but current is none"
    )
    assert isinstance(missing, TopologyMismatchError)
    assert (missing.name, missing.existing, missing.wanted) == ("dunning.email", None, "quorum")
    other = mismatch_from_reply("PRECONDITION_FAILED - something else")
    assert isinstance(other, BrokerError)
    assert not isinstance(other, TopologyMismatchError)


def test_dead_letter_queues_are_classic_so_reading_them_counts_no_delivery() -> None:
    for channel in Channel:
        spec = build_topology().queue(dead_queue(channel))
        assert spec.arguments == {"x-queue-type": "classic"}
        assert spec.bindings == (Binding(DEAD_LETTER_EXCHANGE, channel.value),)


def test_an_old_quorum_dead_letter_queue_names_the_command_that_migrates_it() -> None:
    error = mismatch_from_reply(
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'dunning.sms.dead' in "
        "vhost '/': received the value 'classic' of type 'longstr' but current is the value "
        "'quorum' of type 'longstr'"
    )
    assert isinstance(error, TopologyMismatchError)
    assert (error.name, error.existing, error.wanted) == ("dunning.sms.dead", "quorum", "classic")
    assert "run `dunning topology declare` once" in str(error)


def test_plain_headers_decodes_text_bytes_only() -> None:
    raw = {"a": b"text", "b": b"\xff", "x-death": [{"queue": b"dunning.sms", "count": 1}]}
    assert plain_headers(raw) == {
        "a": "text",
        "b": b"\xff",
        "x-death": [{"queue": "dunning.sms", "count": 1}],
    }


def test_show_json_lists_exchanges_queues_arguments_bindings() -> None:
    result = runner.invoke(app, ["topology", "show", "--json"], env={"DUNNING_DELIVERY_LIMIT": "7"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    queues = {q["name"]: q for q in data["queues"]}
    assert queues["dunning.voice"]["arguments"]["x-delivery-limit"] == 7
    assert queues["dunning.voice"]["bindings"] == [
        {"exchange": INTENTS_EXCHANGE, "routing_key": "voice"}
    ]
    assert {e["name"] for e in data["exchanges"]} >= {INTENTS_EXCHANGE, DEAD_LETTER_EXCHANGE}


def test_show_table_names_every_queue() -> None:
    result = runner.invoke(app, ["topology", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for queue in build_topology().queues:
        assert queue.name in result.output


def test_declare_prints_what_it_declared_and_is_repeatable() -> None:
    server = reset_memory_server()
    for _ in range(2):
        result = runner.invoke(app, ["topology", "declare", "--broker", "memory://"])
        assert result.exit_code == 0, result.output
        assert "queue    dunning.sms <- dunning.intents[sms]" in result.output
    assert set(server.queues) == {q.name for q in build_topology().queues}


def test_declare_mismatch_exits_2_naming_queue_and_argument() -> None:
    server = reset_memory_server()
    server.declare(build_topology(delivery_limit=9))
    result = runner.invoke(
        app,
        ["topology", "declare", "--broker", "memory://"],
        env={"DUNNING_DELIVERY_LIMIT": "5"},
    )
    assert result.exit_code == 2
    assert "dunning.sms" in result.output
    assert "x-delivery-limit" in result.output


def test_declare_unreachable_broker_exits_1() -> None:
    result = runner.invoke(
        app, ["topology", "declare", "--broker", "amqp://guest:guest@127.0.0.1:1/%2F"]
    )
    assert result.exit_code == 1
    assert "error:" in result.output
