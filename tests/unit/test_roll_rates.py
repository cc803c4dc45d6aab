"""Roll rates: buckets recorded per evaluation day, and the matrix `dunning report rolls` prints."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli.report import app
from dunning.ledger import Ledger
from dunning.producers import Account, NoOutcomes, evaluate
from dunning.producers.risk_log import RiskLog
from dunning.producers.strategy import load_strategy

CONFIG = Path(__file__).resolve().parents[2] / "config"
START, END = date(2026, 11, 1), date(2026, 12, 1)  # 30 days apart


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


def account(account_id: str, dpd_on_start: int, **changes: object) -> Account:
    return dataclasses.replace(
        Account(
            account_id=account_id,
            person_id=f"P-{account_id}",
            name="Li Na",
            phone=None,
            email=None,
            address=None,
            timezone="Asia/Shanghai",
            locale="zh-CN",
            jurisdiction="CN",
            collector_role="first_party",
            currency="CNY",
            amount_due=Decimal("500"),
            principal=Decimal("500"),
            due_date=START - timedelta(days=dpd_on_start),
        ),
        **changes,
    )


def snapshot(ledger: Ledger, day: date, book: list[Account]) -> None:
    """One evaluation day recorded as a run records it."""
    strategy = load_strategy(CONFIG / "strategy.toml")
    now = datetime.combine(day, time(1), tzinfo=UTC)
    log = RiskLog(ledger, as_of=day, now=now)
    for evaluation in evaluate(book, strategy, as_of=day, now=now, outcomes=NoOutcomes()):
        log.add(evaluation)
    log.flush()


def synthetic_book(ledger: Ledger) -> None:
    start = [
        account("A", 0),  # current -> 1-30
        account("G", -5),  # current -> 1-30
        account("B", 10),  # 1-30 -> 31-60
        account("C", 10),  # 1-30 -> paid
        account("H", 20),  # 1-30 -> current (cured: the next due date is ahead)
        account("D", 45),  # 31-60 -> 61-90
        account("E", 80),  # 61-90 -> 90+
        account("F", 100),  # 90+ -> charged off
        account("I", 15),  # only on the start day
    ]
    snapshot(ledger, START, start)
    moved = {a.account_id: a for a in start if a.account_id != "I"}
    moved["C"] = dataclasses.replace(moved["C"], paid=True)
    moved["H"] = dataclasses.replace(moved["H"], due_date=END + timedelta(days=3))
    moved["F"] = dataclasses.replace(moved["F"], charged_off=True)
    snapshot(ledger, END, list(moved.values()))
    snapshot(ledger, END, list(moved.values()))  # a re-run of the day replaces its rows


def cell(count: int, share: float) -> dict[str, float]:
    return {"count": count, "share": share}


def test_rolls_reproduce_the_matrix_computed_by_hand(ledger: Ledger, ledger_url: str) -> None:
    synthetic_book(ledger)
    result = CliRunner().invoke(
        app,
        ["rolls", "--from", "2026-11-01", "--to", "2026-12-01", "--json",
         "--database-url", ledger_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["not_on_end_day"] == 1
    assert out["matrices"]["all"] == {
        "current": {"accounts": 2, "to": {"1-30": cell(2, 1.0)}},
        "1-30": {
            "accounts": 3,
            "to": {
                "current": cell(1, 0.3333),
                "31-60": cell(1, 0.3333),
                "paid": cell(1, 0.3333),
            },
        },
        "31-60": {"accounts": 1, "to": {"61-90": cell(1, 1.0)}},
        "61-90": {"accounts": 1, "to": {"90+": cell(1, 1.0)}},
        "90+": {"accounts": 1, "to": {"charged_off": cell(1, 1.0)}},
    }


def test_rolls_by_variant_split_the_same_accounts(ledger: Ledger, ledger_url: str) -> None:
    synthetic_book(ledger)
    result = CliRunner().invoke(
        app,
        ["rolls", "--from", "2026-11-01", "--to", "2026-12-01", "--by", "variant", "--json",
         "--database-url", ledger_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    matrices = json.loads(result.output)["matrices"]
    assert set(matrices) <= {"champion", "challenger"}
    total = sum(row["accounts"] for m in matrices.values() for row in m.values())
    assert total == 8


def test_rolls_print_counts_and_percentages(ledger: Ledger, ledger_url: str) -> None:
    synthetic_book(ledger)
    result = CliRunner().invoke(
        app,
        ["rolls", "--from", "2026-11-01", "--to", "2026-12-01", "--database-url", ledger_url],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "1 (33.3%)" in result.output
    assert "2 (100.0%)" in result.output
    assert "1 accounts of 2026-11-01 not on the end day" in result.output


def test_rolls_refuse_a_bad_grouping(ledger_url: str) -> None:
    result = CliRunner().invoke(
        app,
        ["rolls", "--from", "2026-11-01", "--to", "2026-12-01", "--by", "region",
         "--database-url", ledger_url],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--by 'region'" in result.output
