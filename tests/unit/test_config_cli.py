"""`dunning config show` and `dunning config check --files-only`, and the generated reference."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_an_empty_variable_leaves_the_value_to_its_file(tmp_path: Path) -> None:
    """Compose passes an unset ${VAR:-} through as "": the _FILE secret must still count."""
    token_file = tmp_path / "twilio_token"
    token_file.write_text("file-token-value\n")
    rows = show(
        {"DUNNING_TWILIO_AUTH_TOKEN": "", "DUNNING_TWILIO_AUTH_TOKEN_FILE": str(token_file)}
    )
    assert rows["twilio_auth_token"]["source"] == f"file {token_file}"
    from dunning.settings import Settings

    settings = Settings.from_env(
        {"DUNNING_TWILIO_AUTH_TOKEN": "", "DUNNING_TWILIO_AUTH_TOKEN_FILE": str(token_file)}
    )
    assert settings.twilio_auth_token == "file-token-value"


def test_show_rejects_an_unknown_setting() -> None:
    result = CliRunner().invoke(app, ["config", "show"], env={"DUNNING_PREFTECH": "5"})
    assert result.exit_code == 2
    assert "DUNNING_PREFTECH" in result.output


def test_check_files_passes_on_the_shipped_configuration() -> None:
    env = {"DUNNING_CONFIG_DIR": str(ROOT / "config"), "DUNNING_SANDBOX": "true"}
    result = CliRunner().invoke(app, ["config", "check", "--files-only"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "10 of 10 checks passed"


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


def test_check_files_passes_on_the_shipped_configuration_and_its_sample_book() -> None:
    """Every jurisdiction and locale of the sample book (UK en-GB too) is wired."""
    env = {"DUNNING_CONFIG_DIR": str(ROOT / "config"), "DUNNING_SANDBOX": "true"}
    book = str(ROOT / "config" / "accounts.sample.csv")
    result = CliRunner().invoke(app, ["config", "check", "--files-only", "--book", book], env=env)
    assert result.exit_code == 0, result.output
    assert "UK en-GB" in result.stdout


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _rename_step_template(config: Path) -> None:
    _edit(config / "strategy.toml", 'template = "early_reminder"\ndays = [2, 10, 21]',
          'template = "early_remider"\ndays = [2, 10, 21]')  # fmt: skip


def _delete_a_uk_voicemail(config: Path) -> None:
    (config / "templates" / "en-GB" / "voice" / "mid_reminder.voicemail.j2").unlink()


def _delete_the_email_footer(config: Path) -> None:
    (config / "templates" / "en-US" / "email" / "footer.txt").unlink()


def _drop_the_uk_voice_sender(config: Path) -> None:
    _edit(config / "channels.toml", '[voice.senders.UK]\nfrom = "+447700900100"\n', "")


def _drop_the_uk_institution(config: Path) -> None:
    text = (config / "channels.toml").read_text(encoding="utf-8")
    start = text.index("[institution.UK]")
    end = text.index("\n\n", start)
    (config / "channels.toml").write_text(text[:start] + text[end + 2 :], encoding="utf-8")


def _name_a_notice_that_does_not_exist(config: Path) -> None:
    _edit(config / "compliance.toml", '"validation_notice", "credit_bureau_notice"',
          '"validation_notice", "debt_notice", "credit_bureau_notice"')  # fmt: skip


def _delete_the_validation_notice_letter(config: Path) -> None:
    for file in (config / "templates" / "en-US").glob("*/validation_notice.*.j2"):
        file.unlink()


@pytest.mark.parametrize(
    ("breakage", "failing", "expected"),
    [
        (
            _rename_step_template,
            {"template references"},
            [
                'strategy.toml [[variants.champion.steps]] id "early.email" '
                'template "early_remider"',
                "templates/zh-CN/email/early_remider.subject.j2",
                "templates/en-GB/email/early_remider.html.j2",
            ],
        ),
        (
            _delete_a_uk_voicemail,
            {"template references"},
            [
                'strategy.toml [[variants.champion.steps]] id "mid.call", '
                '[[variants.challenger.steps]] id "mid.call" template "mid_reminder": '
                "missing templates/en-GB/voice/mid_reminder.voicemail.j2 (voice in en-GB, for UK)",
            ],
        ),
        (
            _delete_the_email_footer,
            {"template references", "templates"},
            [
                "templates/en-US/email/footer.txt does not exist; included by "
                "templates/en-US/email/credit_bureau_notice.txt.j2",
                "it includes en-US/email/footer.txt",
            ],
        ),
        (
            _drop_the_uk_voice_sender,
            {"jurisdictions"},
            [
                "channels.toml: no [voice.senders.UK]: strategy.toml has voice steps",
            ],
        ),
        (
            _drop_the_uk_institution,
            {"jurisdictions", "templates"},
            [
                "channels.toml: no [institution.UK] for jurisdiction UK",
            ],
        ),
        (
            _name_a_notice_that_does_not_exist,
            {"compliance templates"},
            [
                "compliance.toml pack[1] (US-2021.11) "
                'credit_bureau.notice_templates "debt_notice": '
                "no complete email or letter template in en-US",
                "no templates/en-US/letter/debt_notice.*.j2",
            ],
        ),
        (
            _delete_the_validation_notice_letter,
            {"compliance templates"},
            [
                'credit_bureau.notice_templates "validation_notice"',
                "no templates/en-US/email/validation_notice.*.j2",
            ],
        ),
    ],
    ids=lambda value: getattr(value, "__name__", "").strip("_") or None,
)
def test_check_files_names_the_broken_reference(
    tmp_path: Path, breakage: Any, failing: set[str], expected: list[str]
) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    breakage(config)
    result = CliRunner().invoke(
        app,
        ["config", "check", "--files-only", "--json"],
        env={"DUNNING_CONFIG_DIR": str(config), "DUNNING_SANDBOX": "true"},
    )
    assert result.exit_code == 1, result.output
    checks = {row["name"]: row for row in json.loads(result.stdout)}
    assert {name for name, row in checks.items() if not row["ok"]} == failing
    details = " ".join(checks[name]["detail"] for name in failing)
    for text in expected:
        assert text in details


def test_check_files_covers_the_locales_and_jurisdictions_of_the_book(tmp_path: Path) -> None:
    """A book may use a locale no institution names, or a jurisdiction with no pack."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    packs = (config / "compliance.toml").read_text(encoding="utf-8")
    uk_pack = packs.index("# --- United Kingdom")
    (config / "compliance.toml").write_text(packs[:uk_pack], encoding="utf-8")
    sample = (config / "accounts.sample.csv").read_text(encoding="utf-8").splitlines()
    us = next(line for line in sample if line.startswith("US-200001,"))
    book = tmp_path / "book.csv"
    uk = next(line for line in sample if line.startswith("UK-"))
    spanish = us.replace("US-200001", "US-200099").replace(",en-US,", ",es-US,")
    book.write_text("\n".join([sample[0], us, spanish, uk]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["config", "check", "--files-only", "--json", "--book", str(book)],
        env={"DUNNING_CONFIG_DIR": str(config), "DUNNING_SANDBOX": "true"},
    )
    assert result.exit_code == 1, result.output
    checks = {row["name"]: row for row in json.loads(result.stdout)}
    references = checks["template references"]["detail"]
    assert "missing templates/es-US/sms/pre_due_reminder.txt.j2 (sms in es-US, for US" in references
    assert (
        f"{book}: account UK-300001 has jurisdiction UK, which has no pack"
        in checks["jurisdictions"]["detail"]
    )


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
