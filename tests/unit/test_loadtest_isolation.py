"""`dunning loadtest` keeps to a vhost and ledger of its own, and checks --plot before the run."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.errors import ConfigError
from dunning.loadtest import LoadTestConfig
from dunning.loadtest.isolation import isolate, throwaway_vhost

ROOT = Path(__file__).resolve().parents[2]
BROKER = "amqp://lt-user:lt-pass@127.0.0.1:5672/%2F"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing answers there


class ManagementApi(BaseHTTPRequestHandler):
    """The three calls a load test makes to RabbitMQ's management API, recorded."""

    calls: ClassVar[list[tuple[str, str, str, object]]] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        auth = base64.b64decode(self.headers["Authorization"].split()[1]).decode()
        self.calls.append((self.command, self.path, auth, body))
        self.send_response(201 if self.command == "PUT" else 204)
        self.end_headers()

    def do_PUT(self) -> None:
        self._record()

    def do_DELETE(self) -> None:
        self._record()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def management() -> Iterator[str]:
    ManagementApi.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ManagementApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_vhost_is_made_and_deleted_through_the_management_api(management: str) -> None:
    url, delete, made = throwaway_vhost(
        BROKER, "dunning-loadtest-abc", management_url=management, which=lambda _: None
    )
    assert url == "amqp://lt-user:lt-pass@127.0.0.1:5672/dunning-loadtest-abc"
    assert made == "vhost dunning-loadtest-abc (management API)"
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    assert ManagementApi.calls == [
        ("PUT", "/api/vhosts/dunning-loadtest-abc", "lt-user:lt-pass", None),
        ("PUT", "/api/permissions/dunning-loadtest-abc/lt-user", "lt-user:lt-pass", everything),
    ]
    delete()
    assert ManagementApi.calls[-1][:2] == ("DELETE", "/api/vhosts/dunning-loadtest-abc")


def test_without_management_api_or_rabbitmqctl_the_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        isolate(
            broker_url=BROKER,
            database_url=None,
            run_id="abc",
            run_dir=tmp_path,
            management_url=CLOSED,
            which=lambda _: None,
        )
    message = str(caught.value)
    assert f"the management API at {CLOSED} did not create it" in message
    assert "rabbitmqctl is not installed here" in message
    assert "--shared-broker" in message
    assert list(tmp_path.iterdir()) == []  # nothing made, nothing left


def test_rabbitmqctl_failure_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "rabbitmqctl"
    fake.write_text("#!/bin/sh\necho 'Error: access refused' >&2\nexit 70\n", encoding="utf-8")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="rabbitmqctl add_vhost failed: Error: access refused"):
        throwaway_vhost(BROKER, "x", management_url=CLOSED, which=lambda _: str(fake))


def test_the_default_ledger_is_a_sqlite_file_of_the_run_removed_after(tmp_path: Path) -> None:
    isolation = isolate(
        broker_url=BROKER, database_url=None, run_id="abc", run_dir=tmp_path, shared_broker=True
    )
    assert isolation.broker_url == BROKER
    assert isolation.database_url == f"sqlite:///{tmp_path / 'ledger.db'}"
    (tmp_path / "ledger.db").write_bytes(b"")
    (tmp_path / "ledger.db-wal").write_bytes(b"")
    isolation.close()
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_is_not_postgresql_needs_shared_database(tmp_path: Path) -> None:
    operator = f"sqlite:///{tmp_path / 'operator.db'}"
    with pytest.raises(ConfigError, match="--shared-database writes into this database"):
        isolate(
            broker_url=BROKER, database_url=operator, run_id="a", run_dir=tmp_path,
            shared_broker=True,
        )  # fmt: skip
    shared = isolate(
        broker_url=BROKER, database_url=operator, run_id="a", run_dir=tmp_path,
        shared_broker=True, shared_database=True,
    )  # fmt: skip
    assert shared.database_url == operator


def test_attaching_to_running_workers_needs_both_shared_flags() -> None:
    with pytest.raises(ConfigError, match="--shared-broker and --shared-database"):
        LoadTestConfig(attach=True, shared_broker=True).check()
    LoadTestConfig(
        attach=True, shared_broker=True, shared_database=True, database_url="sqlite:///x.db"
    ).check()


def test_the_cli_refuses_a_vhost_it_did_not_make_without_shared_broker() -> None:
    result = CliRunner().invoke(app, ["loadtest", "--intents", "10", "--vhost", "/"])
    assert result.exit_code == 2
    assert "--shared-broker" in result.output


def test_plot_without_matplotlib_fails_before_anything_is_published(tmp_path: Path) -> None:
    """matplotlib blocked in a child interpreter: the run must stop at the check, not after."""
    block = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from dunning.cli.main import main; "
        "sys.argv = ['dunning', 'loadtest', '--intents', '10', '--plot', 'plot.png']; main()"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    # A broker nobody listens on: reaching it would fail with a broker error instead.
    env["DUNNING_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:9/%2F"
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "--plot needs matplotlib" in done.stderr
    assert "vhost" not in done.stdout + done.stderr
    assert not (tmp_path / "var").exists()  # no run folder: nothing started
