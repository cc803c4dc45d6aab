"""`dunning config check` against real RabbitMQ, PostgreSQL and Redis, the SMTP sink and the
Twilio stand-in: every check passes when all is well, and each fault is named precisely."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.ledger import Ledger
from dunning.ops.checks import CheckResult, run_checks
from dunning.sandbox.smtp_sink import SmtpSink
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.settings import Settings
from tests.services import RABBITMQ_URL, REDIS_URL, postgres_schema, require

SID = "AC" + "1" * 32
TOKEN = "check-token"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@dataclasses.dataclass
class Services:
    settings: Settings
    smtp: SmtpSink
    twilio: TwilioStandIn


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    for name in ("rabbitmq", "postgres", "redis"):
        require(name)
    with contextlib.ExitStack() as stack:
        # A schema of its own: the shared one may hold another version's ledger.
        database_url = stack.enter_context(postgres_schema("dunning_check"))
        Ledger.open(database_url).close()  # migrated to head, as after `dunning db upgrade`
        async with _services(database_url) as services:
            yield services


@contextlib.asynccontextmanager
async def _services(database_url: str) -> AsyncIterator[Services]:
    async with (
        SmtpSink(username="mailer", password="s3cret") as smtp,
        TwilioStandIn(SID, TOKEN) as twilio,
    ):
        settings = Settings(
            broker_url=RABBITMQ_URL,
            database_url=database_url,
            redis_url=REDIS_URL,
            config_dir=CONFIG_DIR,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_username="mailer",
            smtp_password="s3cret",
            twilio_account_sid=SID,
            twilio_auth_token=TOKEN,
            twilio_api_base=twilio.base_url,
            twilio_timeout_s=5,
            smtp_timeout_s=5,
            webhook_public_url="https://hooks.example.com",
            webhook_secret="check-webhook-secret",
            unsubscribe_secret="check-unsubscribe-secret",
        )
        yield Services(settings, smtp, twilio)


async def check(settings: Settings, **kwargs: bool) -> dict[str, CheckResult]:
    # The checks block (and run their own loop for SMTP): off this loop, which serves the sinks.
    results = await asyncio.to_thread(run_checks, settings, **kwargs)
    return {r.name: r for r in results}


async def test_everything_passes_on_working_services(services: Services) -> None:
    results = await check(services.settings)
    assert [name for name, r in results.items() if not r.ok] == []
    assert list(results) == [
        "compliance.toml", "strategy.toml", "channels.toml", "email settings", "law_firms.toml",
        "templates", "webhook secrets", "template references", "jurisdictions",
        "compliance templates", "broker", "database", "redis", "smtp", "twilio",
    ]  # fmt: skip
    assert "login accepted" in results["smtp"].detail
    assert "credentials accepted" in results["twilio"].detail
    assert "migrations at head" in results["database"].detail
    assert "s3cret" not in repr(results)


async def test_each_fault_is_named(services: Services, tmp_path: Path) -> None:
    broken = dataclasses.replace(
        services.settings,
        broker_url="amqp://guest:guest@127.0.0.1:9/%2F",
        database_url=f"sqlite:///{tmp_path / 'never-migrated.db'}",
        redis_url="redis://127.0.0.1:9/0",
        smtp_password="wrong",
        twilio_auth_token="wrong-token",
    )
    results = await check(broken, files=False)
    assert {name for name, r in results.items() if r.ok} == set()
    assert "127.0.0.1:9" in results["broker"].detail
    assert "at migration none" in results["database"].detail
    assert "run `dunning db upgrade`" in results["database"].detail
    assert results["redis"].detail.startswith("redis://127.0.0.1:9/0")
    assert "535" in results["smtp"].detail
    assert "refused the credentials (HTTP 401)" in results["twilio"].detail
    assert "wrong" not in results["broker"].detail


async def test_a_broken_file_is_named_and_the_others_still_run(
    services: Services, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "strategy.toml").write_text("[stages\n", encoding="utf-8")
    (config / "law_firms.toml").unlink()
    settings = dataclasses.replace(services.settings, config_dir=config)
    results = await check(settings, services=False)
    assert not results["strategy.toml"].ok
    assert "strategy.toml" in results["strategy.toml"].detail
    assert not results["law_firms.toml"].ok
    assert "law_firms.toml" in results["law_firms.toml"].detail
    assert results["compliance.toml"].ok
    assert results["templates"].ok


async def test_cli_prints_one_line_per_check_and_exits_1(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = services.settings
    env = {
        "DUNNING_BROKER_URL": s.broker_url,
        "DUNNING_DATABASE_URL": s.database_url,
        "DUNNING_REDIS_URL": str(s.redis_url),
        "DUNNING_CONFIG_DIR": str(CONFIG_DIR),
        "DUNNING_SMTP_PORT": str(s.smtp_port),
        "DUNNING_SMTP_USERNAME": "mailer",
        "DUNNING_SMTP_PASSWORD": "s3cret",
        "DUNNING_TWILIO_ACCOUNT_SID": SID,
        "DUNNING_TWILIO_AUTH_TOKEN": "not-the-token",
        "DUNNING_TWILIO_API_BASE": str(s.twilio_api_base),
        "DUNNING_SANDBOX": "true",
    }
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["config", "check"], env=env)
    lines = result.stdout.splitlines()
    assert result.exit_code == 1, result.output
    assert len([line for line in lines if line[:1] in {"✓", "✗"}]) == 15
    assert [line.split()[1] for line in lines if line.startswith("✗")] == ["twilio"]
    assert lines[-1] == "14 of 15 checks passed"
