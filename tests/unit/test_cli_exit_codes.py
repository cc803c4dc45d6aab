"""Every command's errors reach the same exit codes through one mapping (dunning/cli/main.py):
a ConfigError exits 2, any other DunningError 1, both with ``error: <message>`` on stderr."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from dunning.cli.main import app, exit_code
from dunning.errors import BrokerConnectionError, ConfigError, LedgerError

ROOT = Path(__file__).resolve().parents[2]
BOOK = str(ROOT / "config" / "accounts.sample.csv")
NOBODY = "amqp://guest:guest@127.0.0.1:9/%2F"  # nothing listens on port 9


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    yield
    structlog.reset_defaults()  # the commands configure logging for themselves


def invoke(args: list[str], tmp_path: Path) -> tuple[int, str]:
    env = {
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_DATA_DIR": str(tmp_path),
        "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "DUNNING_BROKER_URL": NOBODY,
        "DUNNING_LOG_LEVEL": "error",
    }
    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", BOOK, "--dry-run", "--strategy", "missing.toml"], "missing.toml"),
        (["evaluate", BOOK, "--dry-run", "--every", "0m"], "--every '0m'"),
        (["templates", "check", "--root", "no-such-folder"], "no-such-folder does not exist"),
    ],
    ids=["evaluate-strategy", "evaluate-every", "templates-check"],
)
def test_a_configuration_error_exits_2_with_its_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, output = invoke(args, tmp_path)
    assert code == 2, output
    assert output.startswith("error: ")
    assert message in output


@pytest.mark.parametrize(
    "args",
    [["evaluate", BOOK], ["dlq", "list"], ["topology", "declare"]],
    ids=["evaluate", "dlq-list", "topology-declare"],
)
def test_a_broker_that_is_down_exits_1_with_its_reason(tmp_path: Path, args: list[str]) -> None:
    code, output = invoke(args, tmp_path)
    assert code == 1, output
    assert output.startswith("error: ")
    assert "Connection refused" in output


def test_the_demo_the_load_test_and_the_webhook_exit_1_on_a_configuration_error() -> None:
    assert exit_code(ConfigError("x"), "evaluate") == 2
    assert exit_code(ConfigError("x"), None) == 2
    for command in ("demo", "loadtest", "webhook"):
        assert exit_code(ConfigError("x"), command) == 1
    assert exit_code(BrokerConnectionError("x"), "evaluate") == 1
    assert exit_code(LedgerError("x"), "webhook") == 1
