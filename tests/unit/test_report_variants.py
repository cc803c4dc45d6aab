"""`dunning report variants`: contacts and deliveries per variant and stage from the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli.report import app
from dunning.intents import Channel, ContactIntent, Stage
from dunning.ledger import Ledger
from dunning.ledger.reports import variant_totals
from dunning.records import GateDecision, IntentState
from tests.factories import T0, make_intent

WINDOW_S = 60.0


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


def _send(ledger: Ledger, intent: ContactIntent, status: str | None) -> None:
    """Claim and send ``intent``; a receipt ``status`` then settles it (None: no receipt yet)."""
    ledger.record_published([intent], now=T0)
    claim = ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
    ref = f"SM{intent.intent_id}"
    ledger.record_sent(
        intent.intent_id, claim.attempt, provider_ref=ref, status="queued", detail={}, now=T0
    )
    if status is not None:
        rank = {"delivered": 5, "undelivered": 5, "failed": 5}[status]
        ledger.record_receipt(
            ref, status, channel=intent.channel, rank=rank, now=T0, intent_id=intent.intent_id
        )


def _suppress(ledger: Ledger, intent: ContactIntent) -> None:
    ledger.record_published([intent], now=T0)
    decision = GateDecision("suppress", "opt_out", "opted out", "CN-2026.1")
    ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S, gate=lambda _: decision)


def _book(ledger: Ledger) -> None:
    """Champion: early 3 delivered + 1 failed, mid 1 sent; challenger: early 1 delivered,
    1 undelivered, 2 suppressed, 1 only queued. One old champion intent outside the range."""
    champion = {"variant": "champion", "stage": Stage.EARLY}
    challenger = {"variant": "challenger", "stage": Stage.EARLY}
    for status in ("delivered", "delivered", "delivered", "failed"):
        _send(ledger, make_intent(**champion), status)
    _send(ledger, make_intent(Channel.VOICE, variant="champion", stage=Stage.MID), None)
    _send(ledger, make_intent(**challenger), "delivered")
    _send(ledger, make_intent(**challenger), "undelivered")
    _suppress(ledger, make_intent(**challenger))
    _suppress(ledger, make_intent(Channel.EMAIL, **challenger))
    ledger.record_published([make_intent(**challenger)], now=T0)
    old = make_intent(**champion, created_at=T0 - timedelta(days=40))
    _send(ledger, old, "delivered")


def test_counts_and_rates_per_variant_and_stage(ledger: Ledger) -> None:
    _book(ledger)
    rows = ledger.variant_report(since=T0 - timedelta(days=30), until=T0 + timedelta(hours=1))
    by_key = {(r.variant, r.stage): r for r in rows}
    assert sorted(by_key) == [("challenger", "early"), ("champion", "early"), ("champion", "mid")]
    early = by_key[("champion", "early")]
    assert (early.intents, early.contacted, early.delivered, early.failed) == (4, 4, 3, 1)
    assert early.delivery_rate == pytest.approx(0.75)
    mid = by_key[("champion", "mid")]
    assert (mid.contacted, mid.delivered, mid.states) == (1, 0, {"sent": 1})
    rival = by_key[("challenger", "early")]
    assert (rival.intents, rival.contacted, rival.delivered, rival.failed) == (5, 2, 1, 1)
    assert rival.states == {"delivered": 1, "undelivered": 1, "suppressed": 2, "queued": 1}

    totals = {t.variant: t for t in variant_totals(rows)}
    assert totals["champion"].stage == "*"
    assert (totals["champion"].intents, totals["champion"].delivered) == (5, 3)
    assert totals["champion"].delivery_rate == pytest.approx(3 / 5)
    assert totals["challenger"].delivery_rate == pytest.approx(1 / 2)


def test_an_empty_range_has_no_rows_and_no_rate(ledger: Ledger) -> None:
    _book(ledger)
    assert ledger.variant_report(since=T0 + timedelta(days=1), until=T0 + timedelta(days=2)) == []
    _suppress(ledger, make_intent(variant="holdout", stage=Stage.LATE))
    rows = ledger.variant_report(since=T0, until=T0 + timedelta(seconds=1))
    holdout = next(r for r in rows if r.variant == "holdout")
    assert (holdout.stage, holdout.intents, holdout.contacted) == ("late", 1, 0)
    assert holdout.delivery_rate is None


def test_the_command_prints_json_for_the_range(
    ledger: Ledger, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _book(ledger)
    monkeypatch.setenv("DUNNING_NOW", (T0 + timedelta(hours=1)).isoformat())
    monkeypatch.setenv("DUNNING_LOG_LEVEL", "warning")
    result = CliRunner().invoke(app, ["variants", "--json", "--database-url", ledger_url])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    variants = {v["variant"]: v for v in out["variants"]}
    assert variants["champion"]["delivered"] == 3  # the 40-day-old intent is outside 30d
    assert variants["champion"]["delivery_rate"] == pytest.approx(0.6)
    assert variants["challenger"]["states"]["suppressed"] == 2
    assert {(s["variant"], s["stage"]) for s in out["stages"]} == {
        ("champion", "early"), ("champion", "mid"), ("challenger", "early"),
    }  # fmt: skip

    wider = CliRunner().invoke(
        app, ["variants", "--json", "--since", "60d", "--database-url", ledger_url]
    )
    champion = next(v for v in json.loads(wider.output)["variants"] if v["variant"] == "champion")
    assert champion["delivered"] == 4


def test_the_command_prints_tables(ledger: Ledger, ledger_url: str) -> None:
    _book(ledger)
    until = (T0 + timedelta(hours=1)).isoformat()
    result = CliRunner().invoke(
        app,
        [
            "variants",
            "--since",
            "2026-11-01T00:00:00Z",
            "--until",
            until,
            "--database-url",
            ledger_url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "By stage" in result.output
    assert "50.0%" in result.output  # challenger over every stage
    assert "75.0%" in result.output  # champion, early
    assert "60.0%" in result.output  # champion over every stage


def test_a_bad_instant_is_a_usage_error(ledger_url: str) -> None:
    result = CliRunner().invoke(
        app, ["variants", "--since", "yesterday", "--database-url", ledger_url]
    )
    assert result.exit_code == 2
    assert IntentState.QUEUED.value not in result.output
