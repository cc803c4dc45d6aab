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


def lock_people(conn: Connection, people: Iterable[str]) -> None:
    """PostgreSQL: take the transaction's advisory lock on each key (a person id, or another
    name in the same key space such as a number's keywords), sorted so that two transactions
    sharing keys never wait on each other in a cycle. Elsewhere a no-op: SQLite's
    ``BEGIN IMMEDIATE`` already serialises writers."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(people)):
        conn.execute(_LOCK, {"key": key})
