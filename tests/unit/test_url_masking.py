"""Passwords in service URLs never reach the output, and a malformed URL is a clear error."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

import pytest
import structlog
from typer.testing import CliRunner

from dunning.broker import open_async_broker, open_publisher
from dunning.cli.main import app
from dunning.errors import ConfigError
from dunning.urls import mask_url

SECRET = "s3cret-Pw"


@pytest.fixture(autouse=True)
def clean_env_and_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    saved = structlog.get_config()
    handlers = logging.getLogger().handlers[:]
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:s3cret-Pw@mq:5672/%2F", "amqp://guest:***@mq:5672/%2F"),
        (
            "postgresql+psycopg://app@db/ledger?password=s3cret-Pw&sslmode=require",
            "postgresql+psycopg://app@db/ledger?password=***&sslmode=require",
        ),
        ("redis://h:6379/0?sslpassword=s3cret-Pw", "redis://h:6379/0?sslpassword=***"),
        ("postgresql://app:s3cret-Pw@db:notaport/x", "postgresql://app:***@db:notaport/x"),
        ("amqp://guest:s3/cret-Pw@mq/", "amqp://guest:***@mq/"),  # '/' not percent-encoded
        ("amqp://guest:s3cret-Pw@[::1/x", "amqp://guest:***@[::1/x"),
        ("notaurl:s3cret-Pw@x", "notaurl:***@x"),
        ("sqlite:///var/dunning.db", "sqlite:///var/dunning.db"),
        ("amqp://mq/%2F?heartbeat=30", "amqp://mq/%2F?heartbeat=30"),
    ],
)
def test_mask_url_hides_passwords_wherever_they_sit(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_config_show_masks_a_password_given_as_a_query_parameter() -> None:
    env = {
        "DUNNING_DATABASE_URL": f"postgresql+psycopg://app@db/ledger?password={SECRET}",
        "DUNNING_REDIS_URL": f"redis://cache:6379/0?password={SECRET}",
        "DUNNING_BROKER_URL": f"amqp://app:{SECRET}@mq/%2F?auth_token={SECRET}",
    }
    runner = CliRunner()
    as_json = runner.invoke(app, ["config", "show", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    values = {row["name"]: row["value"] for row in json.loads(as_json.stdout)["settings"]}
    assert values["database_url"] == "postgresql+psycopg://app@db/ledger?password=***"
    assert values["redis_url"] == "redis://cache:6379/0?password=***"
    assert values["broker_url"] == "amqp://app:***@mq/%2F?auth_token=***"
    table = runner.invoke(app, ["config", "show"], env={**env, "COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert SECRET not in as_json.output + table.output


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://app:{SECRET}@db:notaport/ledger",
        f"notaurl:{SECRET}@db",
        f"postgresql+nosuchdriver://app:{SECRET}@db/ledger",
    ],
)
def test_db_current_with_a_malformed_url_names_it_masked(url: str) -> None:
    result = CliRunner().invoke(app, ["db", "current", "--database-url", url])
    assert result.exit_code == 2  # a configuration error, like every malformed setting
    assert result.output.startswith("error: database URL ")
    assert SECRET not in result.output
    assert isinstance(result.exception, SystemExit)  # no traceback


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"amqp://guest:{SECRET}@127.0.0.1:notaport/%2F", "the port is not a number"),
        (f"amqp://guest:s3/{SECRET}@127.0.0.1/%2F", "must be percent-encoded"),
        (f"amqps://guest:{SECRET}@[::1/%2F", "IPv6"),
    ],
)
def test_status_with_a_malformed_broker_url_is_a_clear_error(url: str, why: str) -> None:
    result = CliRunner().invoke(app, ["status"], env={"DUNNING_BROKER_URL": url})
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.output.startswith("error: broker URL ")
    assert why in result.output
    assert SECRET not in result.output


def test_opening_a_broker_on_a_malformed_url_names_it_masked() -> None:
    for opener in (open_publisher, open_async_broker):
        with pytest.raises(ConfigError, match="port is not a number") as caught:
            opener(f"amqp://guest:{SECRET}@127.0.0.1:99999/%2F")
        assert SECRET not in str(caught.value)
    with pytest.raises(ConfigError, match="must start with memory://") as wrong:
        open_publisher(f"rabbit://guest:{SECRET}@mq/")
    assert SECRET not in str(wrong.value)
