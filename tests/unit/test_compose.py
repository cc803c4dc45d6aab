"""docker-compose.yml is valid (`docker-compose config -q`, no Docker engine needed) and matches
the settings model: every DUNNING_* variable it or .env.example sets is a known setting."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dunning.intents import Channel
from dunning.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose is not installed (Debian package docker-compose)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def compose(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(ROOT / "docker-compose.yml", tmp / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp / ".env.example")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNNING_", "COMPOSE_"))}
    env["DUNNING_ENV_FILE"] = ".env.example"
    return subprocess.run(
        [compose_binary(), "--project-directory", str(tmp), *args],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_compose_file_is_valid_with_and_without_the_sandbox_profile(tmp_path: Path) -> None:
    plain = compose(tmp_path, "config", "-q")
    assert plain.returncode == 0, plain.stderr
    sandbox = compose(tmp_path, "--profile", "sandbox", "config", "-q")
    assert sandbox.returncode == 0, sandbox.stderr


def test_compose_has_every_component(tmp_path: Path) -> None:
    services = compose(tmp_path, "config", "--services").stdout.split()
    workers = {f"{c.value}-worker" for c in Channel}
    assert workers | {"rabbitmq", "postgres", "redis", "webhook", "evaluator"} <= set(services)
    assert {"sandbox", "mailpit"} <= set(services)


def test_workers_wait_for_healthy_services_and_have_health_checks(tmp_path: Path) -> None:
    text = compose(tmp_path, "config").stdout
    blocks = re.split(
        r"\n  (?=[a-z-]+:\n)", text.split("services:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    )
    by_name = {block.split(":", 1)[0].strip(): block for block in blocks}
    for channel in Channel:
        block = by_name[f"{channel.value}-worker"]
        assert re.search(r"rabbitmq:\n\s+condition: service_healthy", block), channel
        assert re.search(r"postgres:\n\s+condition: service_healthy", block), channel
        assert "/readyz" in block, channel
    assert "--every" in by_name["evaluator"]
    assert "healthz" in by_name["webhook"]
    for trial in ("sandbox", "mailpit"):  # local trials only: behind the sandbox profile
        assert re.search(r"profiles:\n\s+- sandbox", by_name[trial]), trial
    assert "profiles:" not in by_name["sms-worker"]
    for infra in ("rabbitmq", "postgres", "redis"):
        assert "healthcheck:" in by_name[infra], infra


def _dunning_variables(text: str) -> dict[str, str]:
    found = {}
    for match in re.finditer(r"^\s*#?\s*(DUNNING_[A-Z0-9_]+)[=:]\s*(.*)$", text, re.MULTILINE):
        found[match.group(1)] = match.group(2).strip().strip('"')
    return found


def test_every_dunning_variable_in_compose_and_env_example_is_a_setting() -> None:
    variables = _dunning_variables((ROOT / ".env.example").read_text(encoding="utf-8"))
    variables |= _dunning_variables((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    variables.pop("DUNNING_ENV_FILE", None)  # compose's own switch, never seen by dunning
    assert len(variables) > 10
    env = {k: v for k, v in variables.items() if "${" not in v and "/run/secrets" not in v}
    Settings.from_env(env)  # raises ConfigError naming an unknown or malformed variable
