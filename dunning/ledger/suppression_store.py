"""People's suppressions and contact histories: what the gate and the evaluator read.

Writes to a person's suppressions take the person's lock, as the claim does, so a claim in
flight either sees a new suppression or finishes before it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import update

from dunning.clock import utc
from dunning.intents import Channel
from dunning.ledger.account_flags import audit_suppression_removed, sync_account_flags
from dunning.ledger.core import LedgerCore
from dunning.ledger.queries import read_histories, read_history
from dunning.ledger.schema import suppressions
from dunning.records import ContactHistory, Suppression

__all__ = ["SuppressionStore"]


class SuppressionStore(LedgerCore):
    """Suppressions and histories (see the module docstring)."""

    def add_suppression(self, suppression: Suppression) -> None:
        """Record a suppression; a second one with the same person, channel, debt, reason and
        source is a no-op. Sources are kept apart: a START text lifts the opt-out a STOP text
        made and must leave the lender's book flag for the same channel standing."""
        self.add_suppressions([suppression])

    def add_suppressions(self, items: Iterable[Suppression]) -> int:
        """Record many suppressions in one transaction; returns how many were new. Live
        duplicates are skipped, as in :meth:`add_suppression`."""
        wanted = list(items)
        if not wanted:
            return 0
        with self._tx() as conn:
            added, _ = sync_account_flags(conn, wanted, (), now=None)
        return added

    def record_account_flags(
        self, items: Sequence[Suppression], accounts: Sequence[tuple[str, str]], *, now: datetime
    ) -> tuple[int, int]:
        """The evaluator's flag suppressions for a batch of evaluated ``accounts`` (person,
        debt), in one transaction: ``items`` are recorded (live duplicates skipped) and the
        book-owned ones of those debts that the book no longer sets are lifted at ``now``
        (dunning/ledger/account_flags.py). Returns (added, lifted)."""
        if not items and not accounts:
            return 0, 0
        with self._tx() as conn:
            return sync_account_flags(conn, items, accounts, now=utc(now))

    def remove_suppressions(
        self, person_id: str, channel: Channel | None, reason: str, *, now: datetime
    ) -> int:
        """Lift active suppressions with ``reason``; returns how many were lifted.

        ``channel`` None lifts them on every channel; a channel lifts only that channel's.
        """
        now = utc(now)
        where = [
            suppressions.c.person_id == person_id,
            suppressions.c.reason == reason,
            suppressions.c.removed_at.is_(None),
        ]
        if channel is not None:
            where.append(suppressions.c.channel == channel.value)
        with self._tx(person_id) as conn:
            lifted = conn.execute(update(suppressions).where(*where).values(removed_at=now))
            if lifted.rowcount:
                audit_suppression_removed(
                    conn,
                    now,
                    person_id=person_id,
                    reason=reason,
                    channel=None if channel is None else channel.value,
                    count=lifted.rowcount,
                )
            return int(lifted.rowcount)

    def history(self, person_id: str, *, since: datetime) -> ContactHistory:
        with self._tx(read=True) as conn:
            return read_history(conn, person_id, since=utc(since))

    def histories(self, person_ids: Sequence[str], *, since: datetime) -> dict[str, ContactHistory]:
        """:meth:`history` for many people at once (unknown people get an empty history)."""
        with self._tx(read=True) as conn:
            return read_histories(conn, list(dict.fromkeys(person_ids)), since=utc(since))
