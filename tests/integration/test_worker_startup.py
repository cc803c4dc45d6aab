"""A real `dunning worker sms` process that cannot start as configured.

A wrong broker password ends it at once with one line naming the broker (password masked) and the
fix; a refused port is retried with one line per attempt; a metrics port that is taken ends it
before it consumes anything; ``--metrics-port 0`` binds a free port and logs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, work_queue
from dunning.intents import Channel, encode_intent
from dunning.ledger import Ledger
from tests.factories import make_intent
from tests.services import rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
WRONG_PASSWORD = "not-the-password-4711"
# 11:00 in Shanghai: inside the CN contact window whatever the machine's clock says.
DRILL_NOW = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)


def _env(broker_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")},
        "DUNNING_BROKER_URL": broker_url,
        "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "DUNNING_NOW": DRILL_NOW.isoformat(),
        "DUNNING_LOG_FORMAT": "json",
    }


async def _start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dunning", "worker", "sms", *args,
        env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def _finish(worker: asyncio.subprocess.Process, timeout_s: float = 60) -> str:
    """Wait for the process to exit on its own (killed after ``timeout_s``); its output."""
    try:
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=timeout_s)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    return output.decode(errors="replace")


def _event(line: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


async def _read_until(
    worker: asyncio.subprocess.Process,
    seen: list[str],
    done: Callable[[list[str]], bool],
    timeout_s: float = 60,
) -> None:
    """Read output lines into ``seen`` until ``done(seen)``; fails after ``timeout_s``."""
    assert worker.stdout is not None
    async with asyncio.timeout(timeout_s):
        while not done(seen):
            line = await worker.stdout.readline()
            if not line:
                pytest.fail("worker exited early:\n" + "".join(seen)[-3000:])
            seen.append(line.decode(errors="replace"))


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A local port that is bound but not listening: every connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


async def test_a_wrong_password_ends_the_worker_with_one_clear_line(tmp_path: Path) -> None:
    url = urlsplit(rabbitmq_vhost_url("dunning-startup"))
    user = url.username or "guest"
    wrong = url._replace(netloc=f"{user}:{WRONG_PASSWORD}@{url.hostname}:{url.port or 5672}")
    masked = urlunsplit(wrong._replace(netloc=f"{user}:***@{url.hostname}:{url.port or 5672}"))

    worker = await _start(_env(urlunsplit(wrong), tmp_path))
    output = await _finish(worker)

    assert worker.returncode not in (None, 0), output
    refused = [line for line in output.splitlines() if "authentication refused by" in line]
    assert refused == [
        f"error: authentication refused by {masked}: check DUNNING_BROKER_URL (or --broker) "
        "user and password"
    ], output
    assert WRONG_PASSWORD not in output
    for noise in ("pika", "ACCESS_REFUSED", "Traceback"):
        assert noise not in output, output


async def test_a_refused_port_is_retried_with_one_line_per_attempt(
    tmp_path: Path, refused_port: int
) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{refused_port}/%2F"
    worker = await _start(_env(url, tmp_path))
    seen: list[str] = []

    def unreachable(lines: list[str]) -> list[dict[str, Any]]:
        events = (_event(line) for line in lines)
        return [e for e in events if e is not None and e.get("event") == "broker.unreachable"]

    try:
        await _read_until(worker, seen, lambda lines: len(unreachable(lines)) >= 3)
        worker.send_signal(signal.SIGTERM)  # a stop ends the wait for the next attempt
        seen.append(await _finish(worker))
    finally:
        if worker.returncode is None:
            worker.kill()
    output = "".join(seen)
    assert worker.returncode == 0, output
    events = unreachable(output.splitlines())
    assert [e["attempt"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert event["reason"] == (
            f"connection refused by amqp://guest:***@127.0.0.1:{refused_port}/%2F: "
            "is RabbitMQ running on that port?"
        )
    assert "pika" not in output, output


async def test_a_taken_metrics_port_stops_the_worker_before_it_consumes(tmp_path: Path) -> None:
    url = rabbitmq_vhost_url("dunning-startup")
    reset_rabbitmq_topology(url)
    admin = RabbitPublisher(url)
    admin.declare(build_topology())
    intent = make_intent(
        Channel.SMS,
        created_at=DRILL_NOW - timedelta(minutes=1),
        expires_at=DRILL_NOW + timedelta(days=1),
    )
    admin.publish_many([OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(intent), {})])
    try:
        with socket.socket() as taken:
            taken.bind(("0.0.0.0", 0))  # the worker's default metrics host
            taken.listen()
            port = taken.getsockname()[1]
            worker = await _start(_env(url, tmp_path), "--metrics-port", str(port))
            output = await _finish(worker)
        assert worker.returncode not in (None, 0), output
        assert f"metrics port {port} on 0.0.0.0 is already in use" in output, output
        assert "Traceback" not in output, output
        assert admin.queue_depth(work_queue(Channel.SMS)) == 1  # nothing was taken
    finally:
        admin.close()
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert ledger.get_state(intent.intent_id) is None
    ledger.close()


async def test_metrics_port_0_binds_a_free_port_that_answers(tmp_path: Path) -> None:
    worker = await _start(
        _env("memory://", tmp_path), "--metrics-port", "0", "--metrics-host", "127.0.0.1"
    )
    seen: list[str] = []

    def listening(lines: list[str]) -> dict[str, Any] | None:
        events = (_event(line) for line in lines)
        return next((e for e in events if e and e.get("event") == "metrics.listening"), None)

    try:
        await _read_until(worker, seen, lambda lines: listening(lines) is not None)
        event = listening(seen)
        assert event is not None
        port = int(event["port"])
        assert port != 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert (response.status, await response.text()) == (200, "ok\n")
        worker.send_signal(signal.SIGTERM)
        seen.append(await _finish(worker))
    finally:
        if worker.returncode is None:
            worker.kill()
    assert worker.returncode == 0, "".join(seen)[-3000:]
