"""Suppressions written from a book's account flags, kept in step with the book.

The evaluator hands over, per batch, the suppressions the flags of each evaluated account stand
for (source ``account_flag``) and the accounts (person, debt) it evaluated. Flags for a lasting
request or state (cease, dispute, attorney, bankruptcy, death, paid, opt-outs) are only ever
added: a later row without the flag does not lift them, an operator does, because a column
missing from a book must never resume contact. The book owns the ones that end by nature
(:data:`BOOK_OWNED`: ``hardship``, ``promise_to_pay`` and ``time_barred`` on one debt): for an
evaluated debt, a live one that the row no longer stands for (flag cleared, promise or statute
date changed) is lifted (``removed_at`` set, audited as ``suppression_removed``) and the new one
recorded, in the same transaction, so the gate never sees a gap between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from dunning.clock import utc
from dunning.ledger.locks import lock_people
from dunning.ledger.schema import suppressions
from dunning.ledger.transitions import write_audit
from dunning.records import Suppression

__all__ = [
    "ACCOUNT_FLAG",
    "BOOK_OWNED",
    "audit_suppression_removed",
    "suppression_row",
    "sync_account_flags",
]

ACCOUNT_FLAG = "account_flag"
#: Reasons whose account_flag suppressions follow the book: lifted when the row no longer has them.
BOOK_OWNED = frozenset({"hardship", "promise_to_pay", "time_barred"})

_Key = tuple[str, str | None, str | None, str, str, datetime | None, datetime | None]


def suppression_row(s: Suppression) -> dict[str, Any]:
    """The ``suppressions`` row for ``s``."""
    return {
        "person_id": s.person_id,
        "channel": None if s.channel is None else s.channel.value,
        "debt_id": s.debt_id,
        "reason": s.reason,
        "source": s.source,
        "created_at": utc(s.created_at),
        "starts_at": None if s.starts_at is None else utc(s.starts_at),
        "until": None if s.until is None else utc(s.until),
    }


def _key(
    person: str,
    channel: str | None,
    debt: str | None,
    reason: str,
    source: str,
    starts_at: datetime | None,
    until: datetime | None,
) -> _Key:
    # The source is part of a suppression's identity: a STOP text beside the book's opt-out flag
    # is a second row, so a later START (which lifts STOP texts only) leaves the flag standing.
    # Bounds tell two book-owned suppressions apart (a promise moved to a later day is a new
    # one); any other reason is one suppression per person, channel, debt, reason and source.
    if reason not in BOOK_OWNED:
        return (person, channel, debt, reason, source, None, None)
    return (
        person,
        channel,
        debt,
        reason,
        source,
        None if starts_at is None else utc(starts_at),
        None if until is None else utc(until),
    )


def sync_account_flags(
    conn: Connection,
    items: Sequence[Suppression],
    accounts: Sequence[tuple[str, str]],
    *,
    now: datetime | None,
) -> tuple[int, int]:
    """Record ``items`` and lift the stale book-owned ones of ``accounts`` (person, debt) at
    ``now`` (needed when there are accounts); returns (added, lifted). Live duplicates are
    skipped, as in ``Ledger.add_suppressions``."""
    if accounts and now is None:
        raise ValueError("lifting stale flag suppressions needs now")
    wanted: dict[_Key, dict[str, Any]] = {}
    for s in items:
        values = suppression_row(s)
        key = _key(
            s.person_id, values["channel"], s.debt_id, s.reason, s.source, s.starts_at, s.until
        )
        wanted[key] = values
    evaluated = set(accounts)
    people = {p for p, _ in evaluated} | {s.person_id for s in items}
    if not people:
        return 0, 0
    lock_people(conn, people)
    live = conn.execute(
        select(suppressions).where(
            suppressions.c.person_id.in_(sorted(people)), suppressions.c.removed_at.is_(None)
        )
    ).all()
    stale = []
    for row in live:
        key = _key(
            row.person_id,
            row.channel,
            row.debt_id,
            row.reason,
            row.source,
            row.starts_at,
            row.until,
        )
        owned = row.source == ACCOUNT_FLAG and row.reason in BOOK_OWNED
        if owned and (row.person_id, row.debt_id) in evaluated and key not in wanted:
            stale.append(row)
            continue
        wanted.pop(key, None)
    if stale and now is not None:
        conn.execute(
            update(suppressions)
            .where(suppressions.c.id.in_([row.id for row in stale]))
            .values(removed_at=now)
        )
        for row in stale:
            audit_suppression_removed(
                conn,
                now,
                person_id=row.person_id,
                debt_id=row.debt_id,
                reason=row.reason,
                source=row.source,
                why="the book no longer sets it",
            )
    if wanted:
        conn.execute(insert(suppressions), list(wanted.values()))
    return len(wanted), len(stale)


def audit_suppression_removed(conn: Connection, now: datetime, **detail: Any) -> None:
    """One audit row for suppressions lifted together (no intent: they belong to a person)."""
    write_audit(conn, None, "suppression_removed", now, detail=detail)
