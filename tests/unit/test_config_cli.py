"""`dunning config show` and `dunning config check --files-only`, and the generated reference."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)


def show(env: dict[str, str]) -> dict[str, dict[str, object]]:
    result = CliRunner().invoke(app, ["config", "show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return {row["name"]: row for row in data["settings"]}


def test_show_masks_secrets_and_url_passwords_and_names_the_source(tmp_path: Path) -> None:
    token_file = tmp_path / "twilio_token"
    token_file.write_text("file-token-value\n")
    rows = show(
        {
            "DUNNING_BROKER_URL": "amqps://dunning:broker-pass@mq.internal:5671/prod",
            "DUNNING_SMTP_PASSWORD": "smtp-pass-value",
            "DUNNING_TWILIO_AUTH_TOKEN_FILE": str(token_file),
            "DUNNING_PREFETCH": "200",
        }
    )
    assert rows["broker_url"]["value"] == "amqps://dunning:***@mq.internal:5671/prod"
    assert rows["broker_url"]["source"] == "env"
    assert rows["smtp_password"] == {
        "name": "smtp_password", "variable": "DUNNING_SMTP_PASSWORD", "value": "***",
        "source": "env", "secret": True,
    }  # fmt: skip
    assert rows["twilio_auth_token"]["value"] == "***"
    assert rows["twilio_auth_token"]["source"] == f"file {token_file}"
    assert rows["prefetch"]["value"] == "200"
    assert rows["max_in_flight"]["source"] == "default"


def test_show_table_never_prints_a_secret() -> None:
    env = {"DUNNING_WEBHOOK_SECRET": "hook-secret-value", "DUNNING_SMTP_PASSWORD": "pw-value"}
    result = CliRunner().invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "hook-secret-value" not in result.output
    assert "pw-value" not in result.output
    assert "DUNNING_WEBHOOK_SECRET" in result.output


def test_show_rejects_an_unknown_setting() -> None:
    result = CliRunner().invoke(app, ["config", "show"], env={"DUNNING_PREFTECH": "5"})
    assert result.exit_code == 2
    assert "DUNNING_PREFTECH" in result.output


def test_check_files_passes_on_the_shipped_configuration() -> None:
    env = {"DUNNING_CONFIG_DIR": str(ROOT / "config"), "DUNNING_SANDBOX": "true"}
    result = CliRunner().invoke(app, ["config", "check", "--files-only"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "7 of 7 checks passed"


def test_check_flags_every_secret_left_at_the_sandbox_value_outside_the_sandbox() -> None:
    env = {
        "DUNNING_CONFIG_DIR": str(ROOT / "config"),
        "DUNNING_SANDBOX": "false",
        "DUNNING_WEBHOOK_SECRET": "",
        "DUNNING_TWILIO_AUTH_TOKEN": "a-real-token",
    }
    result = CliRunner().invoke(app, ["config", "check", "--files-only"], env=env)
    assert result.exit_code == 1
    [failed] = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert "webhook secrets" in failed
    for name in ("WEBHOOK_SECRET", "UNSUBSCRIBE_SECRET", "WEBHOOK_PUBLIC_URL"):
        assert f"DUNNING_{name}" in failed
    assert "DUNNING_TWILIO_AUTH_TOKEN" not in failed
    assert "a-real-token" not in result.output


def test_check_files_names_the_broken_file_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "compliance.toml").write_text("[[pack]]\njurisdiction = 5\n", encoding="utf-8")
    env = {"DUNNING_CONFIG_DIR": str(config), "DUNNING_SANDBOX": "true"}
    result = CliRunner().invoke(app, ["config", "check", "--files-only"], env=env)
    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert len(failed) == 1
    assert failed[0].split()[1] == "compliance.toml"


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is generated from Settings; regenerate it when this fails."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
