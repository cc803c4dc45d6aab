"""`dunning db upgrade` names the PostgreSQL ledger it migrated with every password masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from typer.testing import CliRunner

from dunning.cli.main import app
from tests.services import postgres_schema

SECRET = "not-a-real-pass"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    handlers = logging.getLogger().handlers[:]
    yield
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers


def test_upgrade_output_masks_a_password_given_as_a_query_parameter() -> None:
    with postgres_schema("dunning_dbcli") as url:
        # Trust authentication ignores the password; libpq still receives it.
        with_password = f"{url}&password={SECRET}"
        result = CliRunner().invoke(app, ["db", "upgrade", "--database-url", with_password])
        assert result.exit_code == 0, result.output
        assert "password=***" in result.output
        assert SECRET not in result.output
