"""scripts/try-rabbitmq.sh, as the README shows it, on a vhost and a ledger schema of its own.

The script pins every process's clock with DUNNING_NOW (its default: 09:00 in Shanghai on the
sample book's day), so what it sends and what it defers are the same whatever day this runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from dunning.ledger.schema import intents
from tests.integration.drill_support import free_port
from tests.services import postgres_schema, rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "try-rabbitmq.sh"
DUNNING = Path(sys.prefix) / "bin" / "dunning"  # the virtualenv running this test
# The script's DUNNING_NOW is 01:00 UTC on 2026-11-28; its receipts fall within a day of it.
PINNED_DAY = ("2026-11-28T01:00:00+00:00", "2026-11-29T01:00:00+00:00")


@dataclass
class ScriptRun:
    printed: str
    states: Counter[tuple[str, str]]  # (channel, state) -> intents
    deferred: dict[str, str]  # account -> channel of each deferred intent
    receipts: dict[str, Any]  # channel -> `dunning receipts --json` entry


def _env(broker_url: str, database_url: str, logs: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNNING_", "TRY_"))}
    env.update(
        DUNNING_BROKER_URL=broker_url,
        DUNNING_DATABASE_URL=database_url,
        TRY_TWILIO_PORT=str(free_port()),
        TRY_SMTP_PORT=str(free_port()),
        TRY_WEBHOOK_PORT=str(free_port()),
        TRY_LOG_DIR=str(logs),
        TRY_VENV=sys.prefix,
    )
    return env


def _run_script(broker_url: str, logs: Path) -> ScriptRun:
    """Run the script unchanged on a throw-away schema and read what it left in the ledger."""
    with postgres_schema("dunning_try") as database_url:
        env = _env(broker_url, database_url, logs)
        run = subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
        summary = subprocess.run(
            [DUNNING, "receipts", "--json", "--since", PINNED_DAY[0], "--until", PINNED_DAY[1]],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(intents.c.account_id, intents.c.channel, intents.c.state)
                ).all()
        finally:
            engine.dispose()
    return ScriptRun(
        printed=run.stdout,
        states=Counter((row.channel, row.state) for row in rows),
        deferred={row.account_id: row.channel for row in rows if row.state == "deferred"},
        receipts={c["channel"]: c for c in json.loads(summary.stdout)["channels"]},
    )


def test_the_readme_script_sends_the_sample_book_and_prints_its_receipts(
    tmp_path: Path,
) -> None:
    broker_url = rabbitmq_vhost_url("dunning-try-rabbitmq")
    reset_rabbitmq_topology(broker_url)  # a deferred intent of an earlier run waits there
    try:
        result = _run_script(broker_url, tmp_path / "logs")
    finally:
        reset_rabbitmq_topology(broker_url)

    # Four SMS and three calls inside the CN and US windows, each with its final receipt; the
    # US-MA email and the third-party account's validation notice (by email: E-SIGN consent;
    # its SMS waits until the notice has gone) went to the SMTP sink, which sends no receipts;
    # the UK email waits for 08:00 in London.
    assert result.states == {
        ("sms", "delivered"): 4,
        ("voice", "delivered"): 3,
        ("email", "sent"): 2,
        ("email", "deferred"): 1,
    }
    assert result.deferred == {"UK-300001": "email"}
    assert set(result.receipts) == {"sms", "voice"}
    assert result.receipts["sms"]["counts"] == {"sent": 4, "delivered": 4}
    assert result.receipts["sms"]["delivered"] == 4
    assert result.receipts["voice"]["counts"]["completed"] == 3
    assert result.receipts["voice"]["delivered"] == 3
    # What the script printed ends with those receipts, for the pinned day.
    assert "receipts 2026-11-28 01:00 .. 2026-11-29 01:00 UTC" in result.printed
    assert "│ sms " in result.printed
    assert "│ voice " in result.printed
