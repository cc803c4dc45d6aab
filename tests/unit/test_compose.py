"""docker-compose.yml as cloned: valid against the Compose Specification's JSON schema (the copy
Debian's docker-compose package ships, which `make test` installs as root), production-shaped
(restart policies, ports on loopback, secrets from files, pinned images, config/ mounted
read-only, no default book) and consistent with .env.example and the settings model.
`docker-compose config -q` runs too where the binary is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dunning.intents import Channel
from dunning.settings import Settings
from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
# The Compose Specification's JSON schema as Debian's docker-compose package ships it.
SCHEMA_PATHS = (Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json"),)
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DUNNING = {name for name, s in SERVICES.items() if str(s.get("image", "")).startswith("dunning:")}
INFRA = ("rabbitmq", "postgres", "redis")
LOOPBACK = "${BIND_ADDRESS:-127.0.0.1}:"
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and $$, as `docker compose` substitutes them."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1)) or (match.group(2) or "")

    return _VARIABLE.sub(one, value)


def _env_example(*, commented: bool) -> dict[str, str]:
    """Assignments in .env.example: the live ones, or also those commented out."""
    found = {}
    pattern = r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$"
    for match in re.finditer(pattern, (ROOT / ".env.example").read_text(), re.MULTILINE):
        if commented or not match.group(1):
            found[match.group(2)] = match.group(3).strip()
    return found


# --- the Compose Specification ------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    for path in SCHEMA_PATHS:
        if path.is_file():
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
    message = (
        "the Compose Specification schema comes with Debian's docker-compose package "
        "(`make system-deps` installs it as root)"
    )
    unavailable(message)


def test_compose_file_is_valid_against_the_compose_specification(schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(COMPOSE)]
    assert errors == []
    assert "version" not in COMPOSE  # obsolete in the specification


def test_the_schema_check_rejects_what_compose_would_reject(schema: dict[str, Any]) -> None:
    broken = yaml.safe_load(COMPOSE_TEXT)
    broken["services"]["redis"]["restart_policy"] = "always"  # not a service key
    broken["services"]["webhook"]["depends_on"] = {"redis": {"condition": "healthy"}}
    messages = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(broken)]
    assert len(messages) == 2, messages


# --- production shape ---------------------------------------------------------------------------


def test_compose_has_every_component() -> None:
    workers = {f"{c.value}-worker" for c in Channel}
    assert workers | {*INFRA, "webhook", "evaluator", "migrate", "topology"} <= set(SERVICES)
    assert {"sandbox", "mailpit"} <= set(SERVICES)
    for trial in ("sandbox", "mailpit"):  # local trials only: behind the sandbox profile
        assert SERVICES[trial]["profiles"] == ["sandbox"], trial
    profiled = {name for name, service in SERVICES.items() if "profiles" in service}
    assert profiled == {"sandbox", "mailpit"}


def test_workers_wait_for_healthy_services_and_have_health_checks() -> None:
    for channel in Channel:
        worker = SERVICES[f"{channel.value}-worker"]
        for infra in INFRA:
            assert worker["depends_on"][infra] == {"condition": "service_healthy"}, channel
        assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert "/readyz" in " ".join(worker["healthcheck"]["test"]), channel
    assert "/healthz" in " ".join(SERVICES["webhook"]["healthcheck"]["test"])
    for infra in INFRA:
        assert SERVICES[infra]["healthcheck"]["test"], infra


def test_the_broker_database_and_redis_restart_on_their_own() -> None:
    for name in INFRA:
        assert SERVICES[name]["restart"] in {"always", "unless-stopped"}, name
    for name in DUNNING - {"migrate", "topology"}:
        assert SERVICES[name]["restart"] == "unless-stopped", name


def test_every_published_port_binds_to_loopback_unless_the_operator_opts_in() -> None:
    published = {name: s.get("ports", []) for name, s in SERVICES.items()}
    assert published["postgres"] == []  # never published
    assert published["redis"] == []
    assert published["rabbitmq"]
    assert published["webhook"]
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str), (name, port)
            assert port.startswith(LOOPBACK), (name, port)
            assert _interpolate(port, {}).startswith("127.0.0.1:"), (name, port)
    assert "BIND_ADDRESS" in _env_example(commented=False)


def test_secrets_come_from_files_never_from_defaults(tmp_path: Path) -> None:
    secrets = COMPOSE["secrets"]
    for name, secret in secrets.items():
        assert secret == {"file": f"./secrets/{name}.txt"}, name
    # Every secret file is made by the script and documented; none is tracked by git.
    done = subprocess.run(
        ["sh", str(ROOT / "scripts" / "compose-secrets.sh"), str(tmp_path / "secrets")],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.count("created") == len(secrets)
    assert {p.stem for p in (tmp_path / "secrets").iterdir()} == set(secrets)
    readme = (ROOT / "secrets" / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}.txt`" in readme for name in secrets)
    assert "secrets/*.txt" in (ROOT / ".gitignore").read_text().splitlines()
    # No password in the file: not in an environment, not as a ${VAR:-default}.
    assert not re.search(r"dunning:dunning|PASSWORD:-|_PASS(WORD)?:\s*\S", COMPOSE_TEXT)
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password"
    )
    assert "RABBITMQ_DEFAULT_PASS" not in SERVICES["rabbitmq"]["environment"]
    assert "/run/secrets/rabbitmq_password" in " ".join(SERVICES["rabbitmq"]["entrypoint"])
    for name, service in SERVICES.items():
        for variable, value in (service.get("environment") or {}).items():
            if variable.endswith("_FILE"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service["secrets"], (name, variable)


def test_every_image_is_pinned() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in SERVICES.items():
        image = _interpolate(service["image"], {})
        repository, _, tag = image.rpartition(":")
        assert repository, (name, image)
        assert re.match(r"v?\d+\.\d+(\.\d+)?\b", tag), (name, image)  # a release, not a line
        assert "latest" not in tag, (name, image)
        if repository == "dunning":
            assert tag == version, "the dunning image is tagged with the project's version"


def test_config_is_mounted_read_only_not_baked_into_the_image() -> None:
    for name in DUNNING:
        assert "./config:/app/config:ro" in SERVICES[name]["volumes"], name
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"^COPY\s+config", dockerfile, re.MULTILINE)


def test_the_evaluator_evaluates_an_explicit_book_only() -> None:
    evaluator = SERVICES["evaluator"]
    assert evaluator["command"] == ["evaluate", "--every", "15m"]  # no book on the command line
    environment = evaluator["environment"]
    assert environment["DUNNING_ACCOUNTS_SOURCE"] == "${DUNNING_ACCOUNTS_SOURCE:-}"  # no default
    assert environment["DUNNING_ACCOUNTS_SOURCE_FILE"] == "/run/secrets/accounts_source"
    assert "accounts.sample" not in COMPOSE_TEXT
    assert _env_example(commented=False)["DUNNING_ACCOUNTS_SOURCE"] == ""


# --- .env.example and the settings ------------------------------------------------------------


def test_env_example_sets_only_what_compose_passes_and_no_profile_service_by_default() -> None:
    passed = {**COMPOSE["x-dunning"]["environment"], **SERVICES["evaluator"]["environment"]}
    for variable in _env_example(commented=True):
        if variable.startswith("DUNNING_"):
            assert passed.get(variable) == f"${{{variable}:-}}", variable  # it reaches dunning
        else:
            assert f"${{{variable}:-" in COMPOSE_TEXT, variable  # compose's own
    profile_only = {n for n, s in SERVICES.items() if "profiles" in s}
    for variable, value in _env_example(commented=False).items():
        hosts = set(re.findall(r"(?:^|//)([a-z][a-z0-9-]*)(?=[:/]|$)", value))
        assert not hosts & profile_only, f"{variable}={value} needs --profile sandbox"


def test_every_dunning_service_environment_makes_valid_settings(tmp_path: Path) -> None:
    values = {
        "broker_url": "amqp://dunning:pw@rabbitmq:5672/%2F",
        "database_url": "postgresql+psycopg://dunning:pw@postgres:5432/dunning",
        "twilio_auth_token": "token-from-file",
        "smtp_password": "",
        "webhook_secret": "hook-secret",
        "unsubscribe_secret": "unsubscribe-key",
        "accounts_source": "",
    }
    for name, value in values.items():
        (tmp_path / name).write_text(f"{value}\n")
    for live in ({}, _env_example(commented=False), _env_example(commented=True)):
        for name in DUNNING:
            env = {
                key: _interpolate(str(value), live).replace("/run/secrets/", f"{tmp_path}/")
                for key, value in (SERVICES[name].get("environment") or {}).items()
            }
            settings = Settings.from_env(env)  # ConfigError names an unknown or bad variable
            assert settings.broker_url == values["broker_url"], name
            assert settings.twilio_auth_token == "token-from-file", name
            assert settings.config_dir == Path("/app/config")


# --- the real binary, where installed ------------------------------------------------------------


def test_docker_compose_accepts_the_file_as_cloned(tmp_path: Path) -> None:
    """No .env and no secrets/ yet: `config` still validates (the Debian package, compose v1)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        unavailable("docker-compose is not installed (`make system-deps` installs it as root)")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNNING_", "COMPOSE_"))}
    for profile in ([], ["--profile", "sandbox"]):
        done = subprocess.run(
            [binary, "--project-directory", str(tmp_path), *profile, "config", "-q"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [binary, "--project-directory", str(tmp_path), "config", "--services"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert set(listed) >= set(SERVICES) - {"sandbox", "mailpit"}
