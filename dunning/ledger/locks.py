"""The per-person serialisation of ledger transactions (PostgreSQL advisory locks).

Every transaction that reads a person's contacts to decide, or writes what a decision reads
(the claim, suppressions, opt-outs), takes the person's lock first, so a claim in flight
either sees a suppression or finishes before it is written.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

__all__ = ["lock_people"]

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
# Many keys in one round trip: unnest yields the array's elements in order, and each row's lock
# is taken as the row is produced, so the locks are still taken in the sorted order given.
_LOCK_MANY = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(key, 0))) "
    "FROM unnest(CAST(:keys AS TEXT[])) AS key"
)


def lock_people(conn: Connection, people: Iterable[str]) -> None:
    """PostgreSQL: take the transaction's advisory lock on each key (a person id, or another
    name in the same key space such as a number's keywords), sorted so that two transactions
    sharing keys never wait on each other in a cycle. Elsewhere a no-op: SQLite's
    ``BEGIN IMMEDIATE`` already serialises writers."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted(set(people))
    if len(keys) == 1:
        conn.execute(_LOCK, {"key": keys[0]})
    elif keys:
        conn.execute(_LOCK_MANY, {"keys": keys})
