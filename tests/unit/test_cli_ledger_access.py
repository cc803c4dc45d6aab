"""Read-only commands open the ledger without migrating it and say what is wrong with it.

Only `dunning db upgrade` (and the long-running worker and evaluator) create tables; a report
against a database that is down says so with the URL (password masked), and one against a
ledger that was never migrated says to run `dunning db upgrade`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.ledger import Ledger

READ_ONLY_COMMANDS = [
    ["receipts"],
    ["intent", "show", "0123456789abcdef"],
    ["report", "variants"],
]
DOWN_URL = "postgresql+psycopg://dunning:s3cret-pw@127.0.0.1:1/ledger"  # nothing listens on :1


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure structlog (level error); later tests get the defaults back."""
    yield
    structlog.reset_defaults()


def invoke(args: list[str], database_url: str) -> tuple[int, str]:
    env = {"DUNNING_DATABASE_URL": database_url, "DUNNING_LOG_LEVEL": "error", "COLUMNS": "250"}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_database_that_is_down_is_named_with_its_password_masked(args: list[str]) -> None:
    code, output = invoke(args, DOWN_URL)
    assert code == 1, output
    assert "postgresql+psycopg://dunning:***@127.0.0.1:1/ledger" in output
    assert "is down or unreachable" in output
    assert "s3cret-pw" not in output
    assert "migrating" not in output


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_missing_sqlite_ledger_is_not_created(args: list[str], tmp_path: Path) -> None:
    path = tmp_path / "var" / "ledger.db"
    code, output = invoke(args, f"sqlite:///{path}")
    assert code == 1, output
    assert f"no ledger at sqlite:///{path}" in output
    assert "dunning db upgrade" in output
    assert not path.parent.exists()


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_ledger_never_migrated_gets_the_hint_and_no_tables(
    args: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "ledger.db"
    path.touch()  # an empty database file, as a fresh volume would hold
    code, output = invoke(args, f"sqlite:///{path}")
    assert code == 1, output
    assert "has never been migrated" in output
    assert "run `dunning db upgrade`" in output
    assert tables(path) == []


def test_a_ledger_behind_the_code_is_refused_with_the_hint(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(f"sqlite:///{path}").close()
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    code, output = invoke(["receipts"], f"sqlite:///{path}")
    assert code == 1, output
    assert "is at revision 0001," in output
    assert "run `dunning db upgrade`" in output


def test_a_ledger_from_a_newer_release_is_not_sent_to_db_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(f"sqlite:///{path}").close()
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    code, output = invoke(["report", "variants"], f"sqlite:///{path}")
    assert code == 1, output
    assert "0999" in output
    assert "newer" in output


def test_a_migrated_ledger_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    code, output = invoke(["db", "upgrade"], f"sqlite:///{path}")
    assert code == 0, output
    code, output = invoke(["receipts", "--json"], f"sqlite:///{path}")
    assert code == 0, output
    assert '"channels": []' in output


def test_db_upgrade_names_a_database_that_is_down() -> None:
    code, output = invoke(["db", "upgrade"], DOWN_URL)
    assert code == 1, output
    assert "postgresql+psycopg://dunning:***@127.0.0.1:1/ledger is down or unreachable" in output
    assert "s3cret-pw" not in output


def test_db_current_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "var" / "ledger.db"
    code, output = invoke(["db", "current"], f"sqlite:///{path}")
    assert code == 1, output
    assert "current: none" in output
    assert not path.parent.exists()
