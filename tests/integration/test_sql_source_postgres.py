"""The SQL account source on PostgreSQL runs its query read-only: nothing it is given can write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dunning.errors import ConfigError
from dunning.producers.accounts import Account
from dunning.producers.sources import sql_accounts
from tests.services import postgres_schema
from tests.unit.test_sources import GOOD


@pytest.fixture
def book_url() -> Iterator[str]:
    with postgres_schema("dunning_book") as url:
        engine = sa.create_engine(url)
        columns = ", ".join(f"{c} TEXT" for c in GOOD)
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE TABLE accounts ({columns})"))
            connection.execute(sa.text("CREATE SEQUENCE contact_seq"))
            insert = sa.text(f"INSERT INTO accounts VALUES ({', '.join(':' + c for c in GOOD)})")
            connection.execute(insert, [GOOD])
        engine.dispose()
        yield url


def state(url: str) -> tuple[list[tuple[str, str]], int]:
    """The book's rows and the sequence's last value (nextval is never rolled back)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT account_id, name FROM accounts")).all()
            last = connection.execute(sa.text("SELECT last_value FROM contact_seq")).scalar_one()
            called = connection.execute(sa.text("SELECT is_called FROM contact_seq")).scalar_one()
    finally:
        engine.dispose()
    return [(str(a), str(n)) for a, n in rows], int(last) if called else 0


@pytest.mark.parametrize(
    "query",
    [
        "UPDATE accounts SET name = 'x' RETURNING *",
        "DELETE FROM accounts RETURNING *",
        "DROP TABLE accounts",
    ],
)
def test_a_writing_statement_fails_clearly_and_changes_nothing(book_url: str, query: str) -> None:
    before = state(book_url)
    with pytest.raises(ConfigError, match=r"must only read \(SELECT, WITH, VALUES or TABLE\)"):
        list(sql_accounts(book_url, query))
    assert state(book_url) == before


def test_a_select_with_a_side_effect_fails_in_the_read_only_transaction(book_url: str) -> None:
    before = state(book_url)
    sneaky = "SELECT a.*, nextval('contact_seq') AS x_seq FROM accounts a"
    with pytest.raises(ConfigError, match="tried to write; it runs read-only"):
        list(sql_accounts(book_url, sneaky))
    assert state(book_url) == before == ([("A-1", GOOD["name"])], 0)
    assert [type(r) for r in sql_accounts(book_url)] == [Account]
