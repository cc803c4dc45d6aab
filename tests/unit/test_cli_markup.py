"""Data printed through rich is shown verbatim: brackets in reasons and names are not markup.

A reason like ``no [voice.senders.UK] section`` used to lose its bracketed part, and one holding
``[/bold]`` made the command exit 1 with rich's MarkupError.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from dunning.broker import open_publisher, reset_memory_server
from dunning.broker.base import OutboundMessage
from dunning.broker.topology import DEAD_LETTER_EXCHANGE, build_topology, work_queue
from dunning.cli.main import app
from dunning.intents import Channel, encode_intent
from dunning.ledger import Ledger
from dunning.records import IntentState
from dunning.workers import headers as h
from tests.factories import T0, make_intent

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "accounts.sample.csv"
REASONS = ["channels.toml: no [voice.senders.UK] section", "closes [/bold] nothing [b]here"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    clean |= {
        "DUNNING_BROKER_URL": "memory://",
        "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_LOG_LEVEL": "error",
        "DUNNING_NOW": "2026-11-28T10:00:00+08:00",
        "COLUMNS": "250",  # wide enough that no table cell wraps
    }
    return clean


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure structlog (level error); later tests get the defaults back."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def dead_letter() -> Iterator[None]:
    reset_memory_server()
    yield
    reset_memory_server()


def _kill(reason: str) -> str:
    """One dead letter in dunning.sms.dead with ``reason`` (and as its error class); its id."""
    intent = make_intent()
    headers = h.dead_letter_headers(
        {},
        error_class=f"Error{reason}",
        reason=reason,
        provider_code=None,
        attempts=1,
        now=T0,
        queue=work_queue(Channel.SMS),
    )
    publisher = open_publisher("memory://", build_topology())
    try:
        message = OutboundMessage(
            DEAD_LETTER_EXCHANGE, "sms", encode_intent(intent), headers, intent.intent_id
        )
        publisher.publish_many([message])
    finally:
        publisher.close()
    return intent.intent_id


@pytest.mark.parametrize("reason", REASONS)
def test_dlq_list_shows_the_reason_verbatim(
    reason: str, env: dict[str, str], dead_letter: None
) -> None:
    _kill(reason)
    result = CliRunner().invoke(app, ["dlq", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert reason in result.stdout
    assert f"Error{reason}" in result.stdout


@pytest.mark.parametrize("reason", REASONS)
def test_dlq_show_shows_the_reason_verbatim(
    reason: str, env: dict[str, str], dead_letter: None
) -> None:
    intent_id = _kill(reason)
    result = CliRunner().invoke(app, ["dlq", "show", intent_id], env=env)
    assert result.exit_code == 0, result.output
    assert f"Error{reason}: {reason}" in result.stdout


@pytest.mark.parametrize("reason", REASONS)
def test_intent_show_shows_the_last_error_verbatim(
    reason: str, env: dict[str, str], tmp_path: Path
) -> None:
    intent = make_intent(step=f"early.sms.{reason}")
    ledger = Ledger.open(env["DUNNING_DATABASE_URL"])
    try:
        ledger.record_published([intent], now=T0)
        claim = ledger.claim(intent, worker="w:1", now=T0, reconcile_after_s=60)
        ledger.record_failure(
            intent.intent_id, claim.attempt, error_class="ConfigError", reason=reason,
            provider_code=None, next_state=IntentState.DEAD, now=T0,
        )  # fmt: skip
    finally:
        ledger.close()
    result = CliRunner().invoke(app, ["intent", "show", intent.intent_id], env=env)
    assert result.exit_code == 0, result.output
    assert f"│ ConfigError: {reason}" in result.stdout  # the last_error row
    assert f"early.sms.{reason}" in result.stdout  # the step: the summary of "evaluated"
    assert f"reason={reason}," in result.stdout  # the attempt's detail


def _book(tmp_path: Path, bad_due_date: str) -> Path:
    """The sample book plus one row whose due date is ``bad_due_date`` (a bad row)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    cells[0], cells[16] = "BAD-1", bad_due_date.replace(",", ";")
    path = tmp_path / "book.csv"
    path.write_text("\n".join([*lines, ",".join(cells)]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("reason", REASONS)
def test_evaluate_shows_a_bad_row_reason_verbatim(
    reason: str, env: dict[str, str], tmp_path: Path
) -> None:
    book = _book(tmp_path, reason)
    result = CliRunner().invoke(app, ["evaluate", str(book), "--dry-run"], env=env)
    assert result.exit_code == 0, result.output
    assert f"{reason!r} is not a date" in result.stdout


def test_evaluate_every_shows_a_bad_row_reason_verbatim(
    env: dict[str, str], tmp_path: Path
) -> None:
    reason = REASONS[0] + " " + REASONS[1]
    book = _book(tmp_path, reason)
    stdout = tmp_path / "stdout.txt"
    env |= {"DUNNING_LOG_FORMAT": "json", "DUNNING_LOG_LEVEL": "info"}
    with stdout.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dunning", "evaluate", str(book), "--every", "1s", "--dry-run"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            events = _events(proc)
            while events.get(timeout=30).get("event") != "evaluation_run":
                pass
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
    assert f"{reason!r} is not a date" in stdout.read_text(encoding="utf-8")


def _events(proc: subprocess.Popen[str]) -> queue.Queue[dict[str, object]]:
    events: queue.Queue[dict[str, object]] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.put(event)

    threading.Thread(target=read, daemon=True).start()
    return events


def test_demo_warnings_keep_their_brackets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import Counter

    from dunning.cli.demo import _print
    from dunning.ops.demo import DemoReport

    note = "letter worker not started: set font_path in the [letter] section [/bold]"
    report = DemoReport(
        accounts=0, intents=[], skipped=Counter({REASONS[1]: 1}), states={}, dead_letters={},
        letters_dir=tmp_path / "[letters]", database="sqlite:///[x].db", log_file=tmp_path / "l",
        elapsed_s=0.0, dead_reasons=Counter({("sms", "ConfigError", REASONS[0]): 1}), notes=[note],
    )  # fmt: skip
    monkeypatch.setenv("COLUMNS", "250")
    _print(report, T0)
    out = capsys.readouterr().out
    assert f"warning: {note}" in out
    assert REASONS[0] in out
    assert REASONS[1] in out
    assert str(tmp_path / "[letters]") in out
    assert "sqlite:///[x].db" in out


def test_topology_show_keeps_the_routing_keys() -> None:
    result = CliRunner().invoke(app, ["topology", "show"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "dunning.intents [sms]" in result.stdout


def test_config_show_prints_values_verbatim(env: dict[str, str]) -> None:
    env["DUNNING_DATA_DIR"] = "/srv/[bold]dunning[/bold]"
    result = CliRunner().invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "/srv/[bold]dunning[/bold]" in result.stdout
