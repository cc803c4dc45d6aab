"""`dunning evaluate --explain`: each account's path and why, the same every time; and the
decision behind each published intent in the audit log."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

from typer.testing import CliRunner

from dunning.broker import reset_memory_server
from dunning.cli.main import app
from dunning.intents import make_intent_id
from dunning.ledger import Ledger
from dunning.producers import evaluate
from dunning.producers.accounts import COLUMNS
from dunning.producers.outcomes import NoOutcomes
from dunning.producers.risk_log import RiskLog
from dunning.producers.sources import accounts_only, open_accounts
from dunning.producers.strategy import load_strategy

ROOT = Path(__file__).resolve().parents[2]
SEGMENTED = ROOT / "config" / "strategy.segmented.toml"
NOW = "2026-11-20T01:00:00+00:00"  # 09:00 in Shanghai


def write_book(path: Path) -> Path:
    base = {
        "person_id": "P-1", "name": "Wang Wei", "phone": "+8613800138001",
        "email": "wang.wei@example.com", "timezone": "Asia/Shanghai", "locale": "zh-CN",
        "jurisdiction": "CN", "currency": "CNY", "amount_due": "800.00", "principal": "3000.00",
        "last_payment_date": "2026-10-01",
    }  # fmt: skip
    rows = [
        {**base, "account_id": "FPD", "person_id": "P-2", "due_date": "2026-11-16",
         "last_payment_date": "", "amount_due": "3000.00"},
        {**base, "account_id": "LOW", "person_id": "P-3", "due_date": "2026-11-17"},
        {**base, "account_id": "HIGH", "person_id": "P-4", "due_date": "2026-11-16",
         "score": "480", "score_model": "bureau-v2"},
    ]  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in COLUMNS if c in {*rows[0], *rows[2]}])
        writer.writeheader()
        writer.writerows(rows)
    return path


def explain(book: Path, *ids: str) -> str:
    result = CliRunner().invoke(
        app,
        ["evaluate", str(book), *ids, "--explain", "--dry-run", "--as-of", "2026-11-20",
         "--strategy", str(SEGMENTED)],
        env={"DUNNING_NOW": NOW},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_explain_shows_segment_rule_score_reasons_variant_and_steps(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.csv")
    out = explain(book)
    assert out == explain(book)  # deterministic
    blocks = {b.split(":", 1)[0]: b for b in out.split("account ")[1:]}
    fpd = blocks["FPD"]
    assert "4 days past due, stage early" in fpd
    assert "segment   first_payment_default (first_payment_default = true)" in fpd
    assert "reason    R02 no payment since the first due date" in fpd
    assert "variant   challenger" in fpd
    assert "chosen    early.call (voice)" in fpd
    low = blocks["LOW"]
    assert "segment   low_risk_early (days_past_due 1..30, score_band in [low_risk])" in low
    assert "chosen    early.sms (sms)" in low
    assert "skipped   early.call (voice): segment: for default, first_payment_default" in low
    assert "[rule segment]" in low
    high = blocks["HIGH"]
    assert "score     480 (model bureau-v2)" in high
    assert "segment   high_risk (score_band in [high_risk])" in high
    assert "chosen    early.call (voice)" in high


def test_explain_only_the_accounts_named(tmp_path: Path) -> None:
    out = explain(write_book(tmp_path / "book.csv"), "HIGH")
    assert out.startswith("account HIGH:")
    assert "account FPD" not in out


def test_an_unknown_account_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["evaluate", str(write_book(tmp_path / "b.csv")), "NOPE", "--explain", "--dry-run"],
        env={"DUNNING_NOW": NOW},
    )
    assert result.exit_code == 2
    assert "not in the book (or a bad row): NOPE" in result.output


def test_each_published_intent_has_its_decision_in_the_audit_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    book = list(accounts_only(open_accounts(str(write_book(tmp_path / "b.csv"))), print))
    now = datetime(2026, 11, 20, 1, tzinfo=UTC)
    ledger = Ledger.open(url)
    try:
        log = RiskLog(ledger, as_of=date(2026, 11, 20), now=now)
        evaluations = list(
            evaluate(book, load_strategy(SEGMENTED), as_of=date(2026, 11, 20), now=now,
                     outcomes=NoOutcomes())
        )  # fmt: skip
        for evaluation in evaluations:
            log.add(evaluation)
        log.flush()
        log.flush()  # nothing twice
        fpd = next(e for e in evaluations if e.account.account_id == "FPD")
        [intent] = fpd.intents
        [event] = [e for e in ledger.timeline(intent.intent_id) if e.kind == "decision"]
        for other in (i for e in evaluations for i in e.intents):
            assert [e.kind for e in ledger.timeline(other.intent_id)].count("decision") == 1
    finally:
        ledger.close()
    assert event.detail["segment"] == "first_payment_default"
    assert event.detail["variant"] == "challenger"
    assert event.detail["reason_codes"][0].startswith("R02")
    assert json.dumps(event.detail)  # plain JSON


def test_a_run_publishes_each_account_down_its_path(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.csv")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    reset_memory_server()
    env = {
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_DATA_DIR": str(tmp_path / "var"),
        "DUNNING_DATABASE_URL": url,
        "DUNNING_BROKER_URL": "memory://",
        "DUNNING_NOW": NOW,
    }
    result = CliRunner().invoke(app, ["evaluate", str(book), "--strategy", str(SEGMENTED)], env=env)
    assert result.exit_code == 0, result.output
    day = date(2026, 11, 20)
    ledger = Ledger.open(url)
    try:

        def published(account: str, step: str) -> bool:
            overview = ledger.intent_overview(make_intent_id(account, step, day))
            return overview is not None and overview["published_at"] is not None

        assert published("FPD", "early.call")  # challenger's call on day 4
        assert published("LOW", "early.sms")
        assert not published("LOW", "early.call")  # low risk: no call
        assert published("HIGH", "early.call")
        buckets = ledger.buckets_on(day)
        assert {a: (b.bucket, b.segment, b.variant) for a, b in buckets.items()} == {
            "FPD": ("1-30", "first_payment_default", "challenger"),
            "LOW": ("1-30", "low_risk_early", "champion"),
            "HIGH": ("1-30", "high_risk", "challenger"),
        }
        call = make_intent_id("FPD", "early.call", day)
        [decision] = [e for e in ledger.timeline(call) if e.kind == "decision"]
        assert decision.detail["segment"] == "first_payment_default"
    finally:
        ledger.close()
