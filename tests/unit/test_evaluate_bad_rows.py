"""`dunning evaluate` on books mixing every kind of bad row: the good rows are published, each
bad one is reported with its line, and nothing stops the run."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from dunning.broker import reset_memory_server
from dunning.cli.main import app
from dunning.clock import ManualClock
from dunning.producers.run import RunReport, evaluation_day, run_every, run_once
from dunning.producers.strategy import load_strategy
from tests.unit.test_sources import GOOD

ROOT = Path(__file__).resolve().parents[2]
# 10:00 in Shanghai on the day after GOOD's due date: every good row gets its day-1 SMS.
NOW = "2026-11-21T02:00:00+00:00"


def row(account_id: str, **changes: str) -> dict[str, str]:
    return {**GOOD, "account_id": account_id, "person_id": f"P-{account_id}",
            "sms_opt_out": "", **changes}  # fmt: skip


def csv_line(values: dict[str, str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([values[c] for c in GOOD])
    return out.getvalue()


def csv_book(path: Path) -> tuple[set[str], dict[int, str]]:
    """A CSV book (with a BOM) and what must come of it: good ids, bad line -> reason part."""
    lines = [
        ",".join(GOOD) + "\n",  # 1
        csv_line(row("G-1")),  # 2
        csv_line(row("B-3", amount_due="1e30")),  # 3
        csv_line(row("B-4", amount_due="1_000")),  # 4
        csv_line(row("B-5", amount_due="１２３")),  # 5
        csv_line(row("B-6", name="Jane\r\nDoe")),  # 6-7: a quoted line break
        csv_line(row("B-8", name="J" * 5000)),  # 8
        csv_line(row("G-9")),  # 9
        csv_line(row("G-1", person_id="P-other")),  # 10: duplicate of line 2
        csv_line(row("B-11", name="=?utf-8?q?x=0D=0ABcc=3A_a=40example.org?=")),  # 11
        csv_line(row("B-12", person_id="P\x07")),  # 12
        csv_line(row("B-13", amount_due="[red]12")),  # 13: rich markup in the reason
        csv_line(row("G-14")),  # 14
        csv_line(row("B-15")).replace("浦东新区", '"浦东新区'),  # 15: the quote never closes
        csv_line(row("B-16")),  # 16: swallowed
        csv_line(row("B-17")),  # 17: swallowed
    ]
    path.write_bytes(b"\xef\xbb\xbf" + "".join(lines).encode())
    bad = {
        3: "amount_due",
        4: "amount_due",
        5: "amount_due",
        6: "name: contains the control character U+000D",
        8: "name: is 5,000 characters long",
        10: "account_id: 'G-1' was already on line 2",
        11: "name: contains an RFC 2047 encoded word",
        12: "person_id: contains the control character U+0007",
        13: "amount_due: '[red]12' is not",
        15: "unterminated quote",
        16: "swallowed by the quote opened on line 15",
        17: "swallowed by the quote opened on line 15",
    }
    return {"G-1", "G-9", "G-14"}, bad


def jsonl_book(path: Path) -> tuple[set[str], dict[int, str]]:
    """A JSON Lines book (with a BOM) and what must come of it."""
    huge = json.dumps(row("B-7")).replace('"1234.50"', "9" * 5000)
    lines = [
        json.dumps(row("J-1")),  # 1
        '{"name": ' + "[" * 50_000 + "]" * 50_000 + "}",  # 2
        json.dumps(row("B-3")).replace('"1234.50"', "1e3"),  # 3
        json.dumps(row("B-4", name="Jane\r\nDoe")),  # 4
        json.dumps(row("J-1", person_id="P-other")),  # 5: duplicate of line 1
        json.dumps(row("J-6")),  # 6
        huge,  # 7
    ]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    bad = {
        2: "nested too deeply",
        3: "amount_due",
        4: "name: contains the control character U+000D",
        5: "account_id: 'J-1' was already on line 1",
        7: "digits",
    }
    return {"J-1", "J-6"}, bad


Book = Callable[[Path], tuple[set[str], dict[int, str]]]


@pytest.mark.parametrize("book", [csv_book, jsonl_book], ids=["csv", "jsonl"])
def test_evaluate_publishes_the_good_rows_and_reports_each_bad_one(
    tmp_path: Path, book: Book
) -> None:
    path = tmp_path / ("book.csv" if book is csv_book else "book.jsonl")
    good, bad = book(path)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    reset_memory_server()
    env = {
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_DATA_DIR": str(tmp_path / "var"),
        "DUNNING_DATABASE_URL": ledger,
        "DUNNING_BROKER_URL": "memory://",
        "DUNNING_NOW": NOW,
        "DUNNING_LOG_FORMAT": "json",
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(app, ["evaluate", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert f"Bad rows: {len(bad)} skipped" in result.output
    report = {
        int(cells[0]): cells[1]
        for line in result.output.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) == 2
        and cells[0].isdigit()
    }
    assert sorted(report) == sorted(bad)
    for line, fragment in bad.items():
        assert fragment in report[line], (line, report[line])
    engine = sa.create_engine(ledger)
    with engine.connect() as connection:
        published = connection.execute(sa.text("SELECT account_id, published_at FROM intents"))
        rows = published.all()
    engine.dispose()
    assert {account for account, _ in rows} == good
    assert all(at is not None for _, at in rows)


def test_scheduled_runs_go_on_past_a_deeply_nested_line(tmp_path: Path) -> None:
    """`--every`: a line that once raised RecursionError out of the source is a bad row each run."""
    path = tmp_path / "book.jsonl"
    good, bad = jsonl_book(path)
    clock = ManualClock(datetime.fromisoformat(NOW))
    stop = threading.Event()
    reports: list[RunReport] = []
    strategy = load_strategy(ROOT / "config" / "strategy.toml")

    def run(now: datetime, start: datetime) -> None:
        day = evaluation_day(now, start, None)
        reports.append(run_once(str(path), strategy, as_of=day, now=now, backends=None))
        if len(reports) == 2:
            stop.set()

    def wait(timeout_s: float) -> bool:
        clock.advance(timeout_s)
        return stop.is_set()

    assert run_every(run, clock=clock, interval_s=900, stop=stop, wait=wait) == 2
    for report in reports:
        assert report.summary.accounts == len(good)
        assert [b.line for b in report.bad_rows.first] == sorted(bad)
