"""The ledger cases on SQLite (a file per test: WAL and BEGIN IMMEDIATE need a real file)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.errors import ConfigError
from dunning.ledger import Ledger
from dunning.ledger.engine import head_revision, make_engine
from tests.ledger_cases import LedgerCases


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    # A nested folder: opening the ledger creates it.
    return f"sqlite:///{tmp_path}/var/ledger.db"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


class TestLedgerOnSQLite(LedgerCases):
    pass


def test_in_memory_sqlite_works_for_quick_tools() -> None:
    memory = Ledger.open("sqlite://")
    try:
        assert memory.counts_by_state() == {}
    finally:
        memory.close()


def test_a_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid"):
        make_engine("not a url")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures logging onto the runner's stream, closed after invoke: put it back."""
    saved = structlog.get_config()
    handlers = list(logging.getLogger().handlers)
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers


@pytest.mark.usefixtures("restore_logging")
def test_db_upgrade_and_current_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli/ledger.db"
    runner = CliRunner()
    behind = runner.invoke(app, ["db", "current", "--database-url", url])
    assert behind.exit_code == 1
    assert "current: none" in behind.output

    first = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert first.exit_code == 0, first.output
    assert f"upgraded empty -> {head_revision()}" in first.output
    second = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert f"already at revision {head_revision()}" in second.output

    current = runner.invoke(app, ["db", "current"], env={"DUNNING_DATABASE_URL": url})
    assert current.exit_code == 0
    assert f"current: {head_revision()}" in current.output
