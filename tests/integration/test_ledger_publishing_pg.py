"""Bulk publishing on PostgreSQL: the unnest insert writes what the portable insert writes, marks
land, and many people's locks are taken in one statement."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, create_engine, select, text

from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.locks import lock_people
from dunning.ledger.publishing import insert_new_intents, mark_intents_published
from dunning.ledger.queries import insert_missing_intents, intent_values
from dunning.ledger.schema import intents
from tests.factories import make_intent
from tests.services import postgres_schema

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
BASE = make_intent(Channel.SMS)


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    with postgres_schema() as url:
        Ledger.open(url).close()  # migrated
        yield url


@pytest.fixture
def conn(schema_url: str) -> Iterator[Connection]:
    engine = create_engine(schema_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE intents, attempts, receipts, suppressions, audit"))
        with engine.connect() as connection:
            yield connection
            connection.rollback()
    finally:
        engine.dispose()


def _rows(prefix: str, count: int) -> list[dict[str, object]]:
    shanghai = timezone(timedelta(hours=8))  # a non-UTC instant must be stored as the same instant
    return [
        intent_values(
            dataclasses.replace(
                BASE,
                intent_id=f"{prefix}-{n:04d}",
                person_id=f"person-{n % 7}",
                created_at=T0.astimezone(shanghai) + timedelta(seconds=n),
            ),
            now=T0,
            published=False,
        )
        for n in range(count)
    ]


def _stored(conn: Connection, prefix: str) -> list[tuple[object, ...]]:
    rows = conn.execute(
        select(intents).where(intents.c.intent_id.like(f"{prefix}-%")).order_by("intent_id")
    ).all()
    return [tuple(r) for r in rows]


def test_unnest_insert_stores_what_the_portable_insert_stores(conn: Connection) -> None:
    ids = {f"a-{n:04d}" for n in range(25)}
    assert insert_missing_intents(conn, _rows("a", 25)) == ids
    portable = _stored(conn, "a")
    conn.execute(text("DELETE FROM intents"))
    assert insert_new_intents(conn, _rows("a", 25)) == ids
    assert len(portable) == 25
    assert _stored(conn, "a") == portable


def test_unnest_insert_leaves_known_ids_untouched(conn: Connection) -> None:
    first = _rows("c", 10)
    insert_new_intents(conn, first[:4])
    conn.execute(text("UPDATE intents SET state = 'sent' WHERE intent_id = 'c-0001'"))
    assert insert_new_intents(conn, first) == {f"c-{n:04d}" for n in range(4, 10)}
    state = conn.scalar(text("SELECT state FROM intents WHERE intent_id = 'c-0001'"))
    assert state == "sent"


def test_rows_with_different_columns_are_refused(conn: Connection) -> None:
    rows = _rows("d", 2)
    del rows[1]["body"]
    with pytest.raises(ValueError, match="same columns"):
        insert_new_intents(conn, rows)


def test_mark_published_sets_only_the_given_intents(conn: Connection) -> None:
    insert_new_intents(conn, _rows("e", 6))
    marked_at = T0 + timedelta(minutes=3)
    mark_intents_published(conn, ["e-0001", "e-0004"], marked_at)
    published = {
        row.intent_id: row.published_at
        for row in conn.execute(select(intents.c.intent_id, intents.c.published_at))
    }
    assert {k for k, v in published.items() if v is not None} == {"e-0001", "e-0004"}
    assert published["e-0001"] == marked_at


def test_many_peoples_locks_are_held_by_one_transaction(schema_url: str) -> None:
    engine = create_engine(schema_url)
    try:
        with engine.begin() as holder, engine.connect() as other:
            lock_people(holder, ["person-c", "person-a", "person-b", "person-a"])
            probe = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")
            for key in ("person-a", "person-b", "person-c"):
                assert other.scalar(probe, {"key": key}) is False
            assert other.scalar(probe, {"key": "person-d"}) is True
            other.rollback()
    finally:
        engine.dispose()
