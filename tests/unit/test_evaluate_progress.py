"""`dunning evaluate` reports progress: log events without a terminal, a bar with ETA on one."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import structlog
from rich.console import Console
from structlog.testing import capture_logs

from dunning.cli.evaluate_progress import terminal_progress
from dunning.producers.progress import LoggedProgress, count_rows
from dunning.producers.run import run_once
from dunning.producers.strategy import load_strategy
from tests.factories import T0

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "accounts.sample.csv"


def write_book(path: Path, rows: int, *, bad: int = 0) -> Path:
    """``bad`` rows whose amount is not a number, then ``rows`` accounts cycled from the
    sample book (ids made unique)."""
    header, *sample = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines = [header]
    for n in range(rows + bad):
        cells = sample[n % len(sample)].split(",")
        cells[0] = f"GEN-{n}"
        if n < bad:
            cells[15] = "lots"  # amount_due
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    """Earlier CLI tests may have left structlog filtering out info events."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_logged_progress_every_n_rows_with_rate_and_eta() -> None:
    ticks = Ticks()
    progress = LoggedProgress(total=50, every_rows=10, every_s=60, monotonic=ticks)
    with capture_logs() as events:
        for row in range(1, 26):
            ticks.now += 0.5  # two rows a second
            progress.update(row, intents=row * 2, bad_rows=row // 10)
    assert [e["rows_read"] for e in events] == [10, 20]
    second = events[1]
    assert second["event"] == "evaluation_progress"
    assert (second["intents"], second["bad_rows"], second["total_rows"]) == (40, 2, 50)
    assert second["rows_per_s"] == 2.0
    assert second["eta_s"] == 15  # 30 rows left at 2 rows/s


def test_logged_progress_also_every_few_seconds_on_a_slow_source() -> None:
    ticks = Ticks()
    progress = LoggedProgress(total=None, every_rows=1000, every_s=5, monotonic=ticks)
    with capture_logs() as events:
        for row in range(1, 8):
            ticks.now += 2
            progress.update(row, intents=0, bad_rows=0)
    assert [e["rows_read"] for e in events] == [3, 6]  # at 6 s and 12 s
    assert "eta_s" not in events[0]
    assert events[0]["rows_per_s"] == 0.5


def test_count_rows_of_files_but_not_of_a_database(tmp_path: Path) -> None:
    assert count_rows(str(write_book(tmp_path / "b.csv", 7, bad=2))) == 9
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"a": 1}\n{"a": 2}\n{"a": 3}', encoding="utf-8")  # no final newline
    assert count_rows(str(jsonl)) == 3
    assert count_rows("postgresql+psycopg://u@h/db") is None
    assert count_rows(str(tmp_path / "missing.csv")) is None


def test_evaluate_without_a_terminal_logs_progress_events(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.csv", 25, bad=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env |= {
        "DUNNING_LOG_FORMAT": "json",
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_NOW": "2026-11-28T10:00:00+08:00",
    }
    done = subprocess.run(
        [sys.executable, "-m", "dunning", "evaluate", str(book), "--dry-run",
         "--progress-every", "10"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    started = [e for e in events if e["event"] == "evaluation_started"]
    progress = [e for e in events if e["event"] == "evaluation_progress"]
    assert started[0]["total_rows"] == 26
    rows = [e["rows_read"] for e in progress]
    assert {10, 20} <= set(rows)
    assert rows == sorted(rows)
    last = progress[-1]
    assert last["total_rows"] == 26
    assert last["intents"] > 0
    assert last["rows_per_s"] is None or last["rows_per_s"] > 0
    assert "eta_s" in last
    assert all(e["bad_rows"] == 1 for e in progress)  # the bad row comes first


def test_on_a_terminal_the_bar_shows_the_total_and_an_eta(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.csv", 300)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    with capture_logs() as events:
        report = run_once(
            str(book), load_strategy(ROOT / "config" / "strategy.toml"),
            as_of=date(2026, 11, 28), now=T0, backends=None, progress=terminal_progress(console),
        )  # fmt: skip
    assert report.summary.accounts == 300
    assert "/300" in screen.getvalue()
    assert "ETA" in screen.getvalue()
    assert not [e for e in events if e["event"] == "evaluation_progress"]
