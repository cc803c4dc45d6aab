"""`dunning status` on a real RabbitMQ: passive declares, a management API stand-in, exit codes."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    INTENTS_EXCHANGE,
    build_topology,
    delay_exchange,
)
from dunning.cli.main import app
from dunning.intents import Channel, encode_intent
from dunning.ops.queue_status import collect_status, management_url
from dunning.workers import headers as h
from tests.factories import make_intent
from tests.services import rabbitmq_vhost_url, require, reset_rabbitmq_topology

ROOT = Path(__file__).resolve().parents[2]
VHOST = "dunning-status-test"
NOW = datetime.now(UTC)
DIED_AT = NOW - timedelta(minutes=10)


@pytest.fixture(scope="module")
def loaded_url() -> Iterator[str]:
    """A vhost holding 3 SMS intents, 2 SMS dead letters (died 10 minutes ago), 1 delayed."""
    require("rabbitmq")
    url = rabbitmq_vhost_url(VHOST)
    reset_rabbitmq_topology(url)
    publisher = RabbitPublisher(url)
    try:
        publisher.declare(build_topology())
        bodies = [encode_intent(make_intent(Channel.SMS)) for _ in range(6)]
        dead_headers = {h.LAST_FAILURE_AT: DIED_AT.isoformat(), h.REASON: "invalid number"}
        publisher.publish_many(
            [OutboundMessage(INTENTS_EXCHANGE, "sms", body, {}) for body in bodies[:3]]
            + [OutboundMessage(DEAD_LETTER_EXCHANGE, "sms", b, dead_headers) for b in bodies[3:5]]
            + [OutboundMessage(delay_exchange(3600), "sms", bodies[5], {})]
        )
        yield url
    finally:
        publisher.close()
        reset_rabbitmq_topology(url)


def test_passive_declares_give_ready_consumers_and_dead_letter_age(loaded_url: str) -> None:
    report = collect_status(loaded_url, use_management=False, now=NOW)
    assert report.source == "amqp"
    work, dead = report.channels["sms"]
    assert (work.ready, work.consumers, work.unacked, work.missing) == (3, 0, None, False)
    assert dead.ready == 2
    assert dead.oldest_age_s == pytest.approx(600, abs=1)
    assert report.channels["email"][1].ready == 0
    assert sum(q.ready or 0 for q in report.delay) == 1
    assert report.over_threshold(0) == ["dunning.sms.dead"]
    assert report.over_threshold(2) == []
    # Peeking the head dead letter put it back: the depth is unchanged.
    assert collect_status(loaded_url, use_management=False).channels["sms"][1].ready == 2


def test_missing_queues_are_reported_not_raised() -> None:
    require("rabbitmq")
    url = rabbitmq_vhost_url(VHOST + "-empty")
    reset_rabbitmq_topology(url)
    report = collect_status(url, use_management=False)
    work, dead = report.channels["voice"]
    assert work.missing
    assert dead.missing
    assert report.over_threshold(0) == []


class _ManagementStandIn(BaseHTTPRequestHandler):
    """GET /api/queues/<vhost> in the management API's shape, from ``rows``."""

    rows: list[dict[str, Any]] = []  # noqa: RUF012  set per test before the server starts
    seen: list[tuple[str, str]] = []  # noqa: RUF012

    def do_GET(self) -> None:
        self.seen.append((unquote(self.path), self.headers.get("Authorization", "")))
        body = json.dumps(self.rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def management_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ManagementStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_management_api_gives_unacked_and_oldest_age(loaded_url: str, management_api: str) -> None:
    _ManagementStandIn.seen = []
    _ManagementStandIn.rows = [
        {
            "name": "dunning.sms",
            "messages_ready": 40,
            "messages_unacknowledged": 7,
            "consumers": 2,
            "head_message_timestamp": int((NOW - timedelta(seconds=90)).timestamp()),
            "message_stats": {"publish": 1234, "ack": 1180},
        },
        {"name": "dunning.sms.dead", "messages_ready": 2, "messages_unacknowledged": 0},
    ]
    report = collect_status(loaded_url, management=management_api, now=NOW)
    assert report.source == "management"
    work, dead = report.channels["sms"]
    assert (work.ready, work.unacked, work.consumers) == (40, 7, 2)
    assert work.oldest_age_s == pytest.approx(90, abs=1)
    assert work.published == 1234
    assert report.management_problem is None
    assert report.without_consumers() == []  # 40 ready, but two workers consume
    # Dead-letter ages still come from the message headers, over AMQP.
    assert dead.oldest_age_s == pytest.approx(600, abs=1)
    assert report.channels["voice"][0].missing
    path, auth = _ManagementStandIn.seen[0]
    assert path in (f"/api/queues/{VHOST}", "/api/queues//")
    assert auth.startswith("Basic ")


def test_unreachable_management_api_falls_back_to_amqp(loaded_url: str) -> None:
    report = collect_status(loaded_url, management="http://127.0.0.1:9", timeout_s=1)
    assert report.source == "amqp"
    assert report.channels["sms"][0].ready == 3
    assert report.management_problem is not None
    assert report.management_problem.startswith("not reachable at http://127.0.0.1:9 (")


def test_cli_says_why_unacked_and_oldest_are_unknown(loaded_url: str) -> None:
    env = {"DUNNING_BROKER_URL": loaded_url, "COLUMNS": "250"}
    result = CliRunner().invoke(
        app, ["status", "--dlq-threshold", "5", "--management-url", "http://127.0.0.1:9"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "management API not reachable at http://127.0.0.1:9 (" in result.stdout
    assert "counts from passive declares; unacked and the oldest work-queue message unknown" in (
        result.stdout
    )
    assert "dunning queues at " in result.stdout  # every refresh is stamped
    asked_not = CliRunner().invoke(app, ["status", "--no-management", "--json"], env=env)
    data = json.loads(asked_not.stdout)
    assert data["management_problem"] == "not asked (--no-management)"
    assert data["taken_at"]


def test_cli_warns_about_ready_messages_without_consumers(loaded_url: str) -> None:
    env = {"DUNNING_BROKER_URL": loaded_url, "COLUMNS": "250"}
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--no-management", "--dlq-threshold", "5"], env=env)
    assert result.exit_code == 0, result.output
    assert "warning: dunning.sms holds 3 ready message(s) and has no consumers" in result.stdout
    assert "dunning.voice holds" not in result.stdout  # empty: nothing waits for a worker
    as_json = runner.invoke(app, ["status", "--no-management", "--json"], env=env)
    assert json.loads(as_json.stdout)["without_consumers"] == ["dunning.sms"]


def test_watch_stamps_each_refresh_and_adds_rates_from_the_second_on(loaded_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env["DUNNING_BROKER_URL"] = loaded_url
    args = ["status", "--watch", "--json", "--no-management", "--interval-s", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dunning", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        documents = _json_documents(proc, count=2)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    first, second = documents
    assert "rates" not in first
    assert first["taken_at"] < second["taken_at"]
    rates = {rate["name"]: rate for rate in second["rates"]}
    # Nothing moves on this vhost: net 0, and in/out unknown without the management API.
    assert rates["dunning.sms"] == {
        "name": "dunning.sms", "in_per_s": None, "out_per_s": None, "net_per_s": 0.0,
    }  # fmt: skip
    assert rates["dunning.sms.dead"]["net_per_s"] == 0.0


def _json_documents(
    proc: subprocess.Popen[str], count: int, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """The first ``count`` JSON documents on ``proc``'s stdout (indented, one after another),
    each within ``timeout_s``; the end of the output fails the test."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            lines.put(text)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    decoder = json.JSONDecoder()
    documents: list[dict[str, Any]] = []
    buffer = ""
    while (line := lines.get(timeout=timeout_s)) is not None:
        buffer += line
        if line.rstrip() != "}":
            continue
        try:
            document, _ = decoder.raw_decode(buffer.strip())
        except ValueError:
            continue
        documents.append(document)
        buffer = ""
        if len(documents) == count:
            return documents
    raise AssertionError(f"status --watch ended after {len(documents)} documents")


def test_management_url_follows_the_broker_url() -> None:
    assert management_url("amqp://u:p@mq.internal:5672/prod") == "http://mq.internal:15672"
    assert management_url("amqps://u:p@mq.internal:5671/prod") == "https://mq.internal:15671"


def test_cli_exits_3_above_the_dlq_threshold(loaded_url: str) -> None:
    runner = CliRunner()
    env = {"DUNNING_BROKER_URL": loaded_url}
    alert = runner.invoke(app, ["status", "--json", "--no-management"], env=env)
    assert alert.exit_code == 3, alert.output
    data = json.loads(alert.stdout)
    assert data["dlq_over_threshold"] == ["dunning.sms.dead"]
    assert data["channels"]["sms"]["queue"]["ready"] == 3
    calm = runner.invoke(app, ["status", "--no-management", "--dlq-threshold", "2"], env=env)
    assert calm.exit_code == 0, calm.output
    assert "sms" in calm.stdout
    assert "delay queues: 1 waiting (3600s=1)" in calm.stdout


def test_cli_exits_1_when_the_broker_is_down() -> None:
    result = CliRunner().invoke(
        app, ["status"], env={"DUNNING_BROKER_URL": "amqp://guest:guest@127.0.0.1:9/%2F"}
    )
    assert result.exit_code == 1
    assert "cannot read queues" in result.output
