"""Recording published intents in bulk: the evaluator's inserts and "published" marks.

On PostgreSQL a batch of intents is one ``INSERT ... SELECT FROM unnest(<one array per
column>)``, and marking them published one ``UPDATE ... WHERE intent_id = ANY(<array>)``: the
statement text stays the same whatever the batch size. A multi-row ``VALUES`` list with a
parameter per cell (SQLAlchemy's insertmanyvalues, an expanded ``IN``) is new text per batch,
which psycopg parses again for every batch: that parsing was most of the evaluator's ledger
time. The insert goes to psycopg directly with binary parameters: text-format arrays are
escaped element by element in Python (the intents' JSON bodies), binary ones are not.
Elsewhere (SQLite) the portable statements in :mod:`dunning.ledger.queries` serve.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text, update
from sqlalchemy.dialects import postgresql

from dunning.clock import utc
from dunning.ledger.queries import insert_missing_intents
from dunning.ledger.schema import intents

__all__ = ["insert_new_intents", "mark_intents_published"]

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
_MARK = text(
    "UPDATE intents SET published_at = :now WHERE intent_id = ANY(CAST(:ids AS VARCHAR[]))"
).bindparams(bindparam("now", type_=intents.c.published_at.type))


@functools.lru_cache(maxsize=16)
def _insert(columns: tuple[str, ...]) -> str:
    """The unnest INSERT (psycopg placeholders) filling ``columns``; returns the inserted ids."""
    arrays = ", ".join(
        f"CAST(%({c})b AS {intents.c[c].type.compile(dialect=_PG)}[])" for c in columns
    )
    names = ", ".join(columns)
    return (
        f"INSERT INTO intents ({names}) SELECT * FROM unnest({arrays}) "  # noqa: S608  column names from the schema
        "ON CONFLICT (intent_id) DO NOTHING RETURNING intent_id"
    )


def _cell(value: Any) -> Any:
    # Arrays go to the driver as they are, past the column types' bind processing: timestamps
    # are normalised to UTC here as UTCDateTime would.
    return utc(value) if isinstance(value, datetime) else value


def insert_new_intents(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows whose intent_id is new (others untouched); returns the ids inserted.

    Every row must have the same keys (``queries.intent_values`` rows)."""
    if not rows:
        return set()
    if conn.dialect.name != "postgresql":
        return insert_missing_intents(conn, rows)
    keys = tuple(rows[0])
    if any(tuple(row) != keys for row in rows):
        raise ValueError("insert_new_intents: every row needs the same columns")
    params = {c: [_cell(row[c]) for row in rows] for c in keys}
    # A column left NULL in every row is left out (its default is NULL): binary arrays need a
    # value to tell their element type by.
    columns = tuple(c for c in keys if any(v is not None for v in params[c]))
    # The connection's own driver connection, so the insert is part of its transaction; %(x)b
    # placeholders send the arrays in binary.
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(_insert(columns), {c: params[c] for c in columns})
        return {row[0] for row in cursor.fetchall()}


def mark_intents_published(conn: Connection, intent_ids: Sequence[str], now: datetime) -> None:
    """Set ``published_at`` of these intents to ``now``."""
    if not intent_ids:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_MARK, {"ids": list(intent_ids), "now": utc(now)})
        return
    conn.execute(
        update(intents).where(intents.c.intent_id.in_(intent_ids)).values(published_at=utc(now))
    )
