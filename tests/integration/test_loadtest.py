"""`dunning loadtest` on the machine's RabbitMQ and PostgreSQL with the Twilio stand-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.errors import ConfigError
from dunning.ledger import Ledger
from dunning.ledger.engine import make_engine
from dunning.loadtest import LoadTestConfig, run_loadtest
from dunning.loadtest.generator import IntentMix, SyntheticIntents, daytime_zone
from dunning.loadtest.metrics import percentile
from dunning.loadtest.run import Progress
from tests.services import (
    POSTGRES_URL,
    RABBITMQ_URL,
    postgres_schema,
    rabbitmq_vhost_url,
    require,
    reset_rabbitmq_topology,
    unavailable,
)

pytestmark = pytest.mark.integration


def _rabbitmqctl(*args: str) -> str:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        unavailable("rabbitmqctl is not installed: cannot look inside the broker")
    done = subprocess.run(
        [ctl, "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_a_small_run_sends_every_intent_once_and_reports_it(tmp_path: Path) -> None:
    require("rabbitmq")
    require("postgres")
    seen: list[Progress] = []
    config = LoadTestConfig(
        intents=150,
        rate_per_s=300.0,
        workers=1,
        mix=IntentMix(jurisdictions=(("CN", 1.0),)),
        # The run makes a vhost of its own on this broker and a schema of its own in this
        # database, so other tests' workers and ledgers never see its intents.
        broker_url=RABBITMQ_URL,
        database_url=POSTGRES_URL,
        run_dir=tmp_path,
        behaviour={"rate_500": 0.05, "seed": 7},
        max_seconds=50,
        worker_env={"DUNNING_RETRY_DELAYS_S": "1"},
    )
    result = run_loadtest(config, seen.append)
    assert result.finished
    assert result.published == 150
    assert result.duplicates == 0
    # A retried intent can meet the CN per-day SMS cap (failed attempts count): deferred.
    deferred = result.by_state.get("deferred", 0)
    assert set(result.by_state) <= {"sent", "deferred"}
    assert result.sent == 150 - deferred
    assert result.creates_seen == result.sent  # the stand-in accepted each sent intent once
    assert result.retries > 0  # the scripted 5xx went through the retry ladder
    lat = result.latency_s
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert sum(result.series["achieved_per_s"]) == result.sent
    assert seen
    assert seen[-1].phase == "stopping"
    json.dumps(result.as_dict(), default=str)  # what --json writes
    run_id = result.config["run_id"]
    assert result.isolation[0].startswith(f"vhost dunning-loadtest-{run_id} (")
    assert result.isolation[1] == f"schema dunning_loadtest_{run_id}"


def test_a_run_leaves_the_operators_ledger_and_vhost_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DUNNING_BROKER_URL and DUNNING_DATABASE_URL name the operator's deployment: the run
    publishes nothing there, writes nothing there, and removes what it made for itself."""
    require("rabbitmq")
    _rabbitmqctl("status")  # skips when the broker cannot be looked into
    operator_broker = rabbitmq_vhost_url("dunning-test-loadtest-operator")
    assert operator_broker != RABBITMQ_URL
    reset_rabbitmq_topology(operator_broker)
    with postgres_schema("dunning_test_operator") as operator_ledger:
        Ledger.open(operator_ledger).close()  # the operator's ledger, migrated
        for key in [k for k in os.environ if k.startswith("DUNNING_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("DUNNING_BROKER_URL", operator_broker)
        monkeypatch.setenv("DUNNING_DATABASE_URL", operator_ledger)
        monkeypatch.chdir(tmp_path)  # the run folder (var/loadtest) goes here
        monkeypatch.setenv("DUNNING_CONFIG_DIR", str(Path(__file__).parents[2] / "config"))
        out = tmp_path / "result.json"
        result = CliRunner().invoke(
            app,
            ["loadtest", "--intents", "40", "--rate", "200", "--max-seconds", "60",
             "--json", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        data = json.loads(out.read_text())
        assert data["sent"] == 40
        engine = make_engine(operator_ledger)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM intents")).scalar_one() == 0
        finally:
            engine.dispose()
    operator_queues = _rabbitmqctl("list_queues", "-p", "dunning-test-loadtest-operator", "name")
    assert "dunning." not in operator_queues  # nothing declared or left on the operator's vhost
    run_id = data["config"]["run_id"]
    assert f"dunning-loadtest-{run_id}" not in _rabbitmqctl("list_vhosts", "name")
    assert not (tmp_path / "var" / "loadtest" / run_id / "ledger.db").exists()


def test_the_cli_refuses_a_broker_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_BROKER_URL", "amqp://guest:guest@rabbit.example.com:5672/%2F")
    result = CliRunner().invoke(app, ["loadtest", "--intents", "10"])
    assert result.exit_code == 1
    assert "loopback" in result.output


def test_config_bounds() -> None:
    with pytest.raises(ConfigError, match="--intents"):
        LoadTestConfig(intents=0).check()
    with pytest.raises(ConfigError, match="loopback"):
        LoadTestConfig(database_url="postgresql+psycopg://u@db.internal/x").check()


def test_synthetic_intents_are_unique_and_in_daytime() -> None:
    now = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai
    source = SyntheticIntents(IntentMix(jurisdictions=(("CN", 1.0), ("US", 1.0))), seed=1)
    made = source.make(200, now=now)
    assert len({i.intent_id for i in made}) == 200
    assert len({i.recipient.phone for i in made}) == 200
    assert all(i.account_id.startswith(source.account_prefix) for i in made)
    assert {i.jurisdiction for i in made} == {"CN", "US"}
    for intent in made:
        assert 10 <= now.astimezone(intent.zone).hour < 16
    assert daytime_zone("CN", datetime(2026, 11, 28, 4, 0, tzinfo=UTC)) == "Asia/Shanghai"


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, f) for f in (0.5, 0.9, 0.99, 1.0)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([], 0.5) == 0.0
