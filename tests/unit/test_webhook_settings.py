"""Outside the sandbox the webhook never runs on the sandbox's public secrets or default URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.errors import ConfigError
from dunning.ledger import Ledger
from dunning.receipts.app import create_app
from dunning.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
NAMES = (
    "DUNNING_TWILIO_AUTH_TOKEN",
    "DUNNING_WEBHOOK_SECRET",
    "DUNNING_UNSUBSCRIBE_SECRET",
    "DUNNING_WEBHOOK_PUBLIC_URL",
)
REAL = {
    "twilio_auth_token": "a-real-token",
    "webhook_secret": "a-real-vendor-key",
    "unsubscribe_secret": "a-real-unsubscribe-key",
    "webhook_public_url": "https://hooks.example.com",
}


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    opened = Ledger.open("sqlite://")
    yield opened
    opened.close()


def test_the_webhook_refuses_the_sandbox_defaults_naming_each_variable(ledger: Ledger) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app(Settings(config_dir=CONFIG), ledger)
    for name in NAMES:
        assert name in str(refused.value)
    assert "DUNNING_SANDBOX=true" in str(refused.value)


def test_empty_variables_count_as_unset() -> None:
    env = {f"DUNNING_{k.upper()}": v for k, v in REAL.items()} | {"DUNNING_WEBHOOK_SECRET": ""}
    problems = Settings.from_env(env).webhook_problems()
    assert len(problems) == 1
    assert problems[0].startswith("DUNNING_WEBHOOK_SECRET is not set")


def test_the_unsubscribe_key_must_differ_from_the_vendor_key() -> None:
    settings = Settings(**{**REAL, "unsubscribe_secret": REAL["webhook_secret"]})
    assert settings.webhook_problems() == [
        "DUNNING_UNSUBSCRIBE_SECRET must differ from DUNNING_WEBHOOK_SECRET"
    ]


def test_real_values_or_the_sandbox_flag_let_it_start(ledger: Ledger) -> None:
    assert Settings(**REAL).webhook_problems() == []
    create_app(Settings(config_dir=CONFIG, **REAL), ledger)
    create_app(Settings(config_dir=CONFIG, sandbox=True), ledger)


def test_the_command_refuses_before_opening_anything(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    env = {
        "DUNNING_CONFIG_DIR": str(CONFIG),
        "DUNNING_DATABASE_URL": f"sqlite:///{database}",
        "DUNNING_TWILIO_AUTH_TOKEN": "a-real-token",
    }
    # A TEST-NET address: were the check missing, binding would fail at once, not serve.
    result = CliRunner().invoke(app, ["webhook", "--host", "192.0.2.1", "--port", "0"], env=env)
    assert result.exit_code == 1
    for name in NAMES[1:]:
        assert name in result.output
    assert "DUNNING_TWILIO_AUTH_TOKEN is not set" not in result.output
    assert not database.exists()
