"""The ledger cases on PostgreSQL, in a fresh schema per test run (search_path in the URL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from dunning.ledger import Ledger
from tests.ledger_cases import LedgerCases
from tests.services import postgres_schema

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    """A URL whose connections live in a throw-away schema, dropped at the end."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def ledger_url(schema_url: str) -> str:
    """The schema, migrated and emptied before each test."""
    opened = Ledger.open(schema_url)
    opened.close()
    engine = create_engine(schema_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE intents, attempts, receipts, suppressions, audit"))
    engine.dispose()
    return schema_url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


class TestLedgerOnPostgres(LedgerCases):
    def test_tables_live_in_the_test_schema(self, ledger_url: str) -> None:
        engine = create_engine(ledger_url)
        try:
            with engine.connect() as conn:
                schema = conn.scalar(
                    text(
                        "SELECT table_schema FROM information_schema.tables "
                        "WHERE table_name = 'intents' AND table_schema = current_schema()"
                    )
                )
        finally:
            engine.dispose()
        assert schema is not None
        assert schema.startswith("dunning_test_")
