"""The ledger: the one record of what was sent to whom, and the claim that makes it exactly once.

Every write is one transaction. :meth:`Ledger.claim` is serialised per person (PostgreSQL: a
transaction-scoped advisory lock on the person; SQLite: ``BEGIN IMMEDIATE``), so two workers
racing for the same person never both pass the caps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from dunning.clock import utc
from dunning.errors import LedgerError
from dunning.intents import Channel, ContactIntent
from dunning.ledger import engine as engines
from dunning.ledger import transitions
from dunning.ledger.account_flags import sync_account_flags
from dunning.ledger.group_commit import SentRecord, record_sent_batch
from dunning.ledger.queries import (
    Claim,
    TimelineEvent,
    insert_missing_intents,
    intent_values,
    read_counts,
    read_histories,
    read_history,
    read_intent,
    read_timeline,
)
from dunning.ledger.receipts_store import store_receipt
from dunning.ledger.schema import intents, suppressions
from dunning.records import (
    ContactHistory,
    DialOutcome,
    GateDecision,
    IntentState,
    Suppression,
)

__all__ = ["Ledger"]

_BATCH = 500


class Ledger:
    """Intents, attempts, receipts, suppressions and audit in one SQL database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{engines.READ_ONLY: True})
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        pool: engines.PoolBounds | None = None,
        application_name: str = "dunning",
    ) -> Ledger:
        """Connect to ``url``; ``migrate`` runs the migrations up to head first.

        ``pool`` and ``application_name``: see :func:`dunning.ledger.engine.make_engine`.
        """
        ledger = cls(engines.make_engine(url, pool=pool, application_name=application_name))
        if migrate:
            ledger.upgrade()
        return ledger

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for the receipt-side modules that add their own queries)."""
        return self._engine

    def upgrade(self) -> None:
        engines.upgrade_head(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def ping(self) -> None:
        """``SELECT 1``: raises LedgerError when the database does not answer (readiness)."""
        with self._tx(read=True) as conn:
            conn.execute(text("SELECT 1"))

    def release_idle(self, keep: int) -> int:
        """Close pooled connections left idle beyond ``keep``; returns how many were closed."""
        return engines.release_idle(self._engine, keep)

    @contextmanager
    def _tx(self, person_id: str | None = None, *, read: bool = False) -> Iterator[Connection]:
        """One transaction; ``person_id`` serialises it with every other one for that person."""
        engine = self._reader if read else self._engine
        try:
            with engine.begin() as conn:
                if person_id is not None and self._postgres:
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                        {"key": person_id},
                    )
                yield conn
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger transaction failed: {exc}") from exc

    # --- publishing ---------------------------------------------------------------------------

    def record_published(self, intents_: Sequence[ContactIntent], *, now: datetime) -> set[str]:
        """Insert new intents as queued (existing ids untouched); returns the ids newly inserted."""
        now = utc(now)
        inserted: set[str] = set()
        for start in range(0, len(intents_), _BATCH):
            rows = [
                intent_values(i, now=now, published=False) for i in intents_[start : start + _BATCH]
            ]
            with self._tx() as conn:
                inserted |= insert_missing_intents(conn, rows)
        return inserted

    def mark_published(self, intent_ids: Iterable[str], *, now: datetime) -> None:
        """Note that the broker confirmed these intents (the sweeper stops republishing them)."""
        now = utc(now)
        ids = list(intent_ids)
        for start in range(0, len(ids), _BATCH):
            with self._tx() as conn:
                conn.execute(
                    update(intents)
                    .where(intents.c.intent_id.in_(ids[start : start + _BATCH]))
                    .values(published_at=now)
                )

    # --- the claim ----------------------------------------------------------------------------

    def claim(
        self,
        intent: ContactIntent,
        *,
        worker: str,
        now: datetime,
        reconcile_after_s: float,
        gate: Callable[[ContactHistory], GateDecision] | None = None,
    ) -> Claim:
        """Decide, in one transaction, whether this delivery of ``intent`` may be sent now.

        ``gate`` sees the person's history as of the lock this transaction holds; any verdict
        but allow is written to the audit table and ends the claim as ``gated``. A ``sending``
        intent younger than ``reconcile_after_s`` is ``in_doubt``; an older one is settled from
        its receipts (``done``) or reclaimed and claimed again.
        """
        with self._tx(intent.person_id) as conn:
            return transitions.claim_intent(
                conn,
                intent,
                worker=worker,
                now=utc(now),
                reconcile_after_s=reconcile_after_s,
                gate=gate,
            )

    def release(self, intent_id: str, attempt: int, *, reason: str, now: datetime) -> None:
        """Undo a claim that never reached the provider (rate limited): back to queued, attempt not counted."""  # noqa: E501
        with self._tx() as conn:
            transitions.release_attempt(conn, intent_id, attempt, reason=reason, now=utc(now))

    # --- outcomes -----------------------------------------------------------------------------

    def record_sent(
        self,
        intent_id: str,
        attempt: int,
        *,
        provider_ref: str,
        status: str,
        detail: Mapping[str, str | int],
        now: datetime,
    ) -> None:
        """The provider accepted attempt ``attempt``; early receipts for its ref are applied."""
        with self._tx() as conn:
            transitions.record_sent(
                conn,
                intent_id,
                attempt,
                provider_ref=provider_ref,
                status=status,
                detail=detail,
                now=utc(now),
            )

    def record_sent_many(self, records: Sequence[SentRecord]) -> None:
        """:meth:`record_sent` for many accepted sends in one transaction (group commit)."""
        if not records:
            return
        with self._tx() as conn:
            record_sent_batch(conn, [dataclasses.replace(r, now=utc(r.now)) for r in records])

    def record_failure(
        self,
        intent_id: str,
        attempt: int,
        *,
        error_class: str,
        reason: str,
        provider_code: str | None,
        next_state: IntentState,
        now: datetime,
        reached_provider: bool = True,
    ) -> None:
        """next_state: QUEUED (will retry), DEAD, or EXPIRED.

        ``reached_provider=False``: the send failed before its request was written (template
        error, DNS failure, connection refused); the attempt is kept as ``not_sent`` and the
        caps do not count it.
        """
        with self._tx() as conn:
            transitions.record_failure(
                conn,
                intent_id,
                attempt,
                error_class=error_class,
                reason=reason,
                provider_code=provider_code,
                next_state=next_state,
                now=utc(now),
                reached_provider=reached_provider,
            )

    def record_receipt(
        self,
        provider_ref: str,
        status: str,
        *,
        channel: Channel,
        rank: int,
        now: datetime,
        intent_id: str | None = None,
        raw: Mapping[str, Any] | None = None,
        dial_outcome: DialOutcome | None = None,
    ) -> bool:
        """Store a provider receipt; True when it outranked earlier ones and moved the intent.

        The webhook's path (:func:`receipts_store.store_receipt`): a repeated receipt is a
        no-op, and one for a ref the ledger does not know yet is kept and applied by record_sent.
        """
        outcome = store_receipt(
            self._engine,
            provider_ref=provider_ref,
            channel=channel,
            status=status,
            rank=rank,
            now=now,
            intent_id=intent_id,
            raw=raw,
            dial_outcome=dial_outcome,
        )
        return outcome.kind == "applied"

    def set_state(self, intent_id: str, state: IntentState, *, reason: str, now: datetime) -> bool:
        """Move an intent that is waiting (queued or deferred) without an attempt: expired,
        deferred, dead, cancelled.

        Returns False, changing nothing, when the intent is not in the ledger or no longer
        waiting: a late or duplicate copy of a message must never rewrite an intent that was
        sent, settled, or is being sent right now by another worker.
        """
        now = utc(now)
        waiting = (IntentState.QUEUED.value, IntentState.DEFERRED.value)
        with self._tx() as conn:
            moved = conn.execute(
                update(intents)
                .where(intents.c.intent_id == intent_id, intents.c.state.in_(waiting))
                .values(state=state.value, sending_since=None, updated_at=now, last_error=reason)
            ).rowcount
            if moved:
                transitions.write_audit(
                    conn, intent_id, state.value, now, detail={"reason": reason}
                )
            return bool(moved)

    def get_state(self, intent_id: str) -> IntentState | None:
        with self._tx(read=True) as conn:
            value = conn.scalar(select(intents.c.state).where(intents.c.intent_id == intent_id))
        return None if value is None else IntentState(value)

    def audit(
        self,
        intent_id: str | None,
        event: str,
        *,
        now: datetime,
        rule_id: str | None = None,
        pack_version: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self._tx() as conn:
            transitions.write_audit(
                conn,
                intent_id,
                event,
                utc(now),
                rule_id=rule_id,
                pack_version=pack_version,
                detail=detail,
            )

    # --- suppressions and history -------------------------------------------------------------

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
                transitions.write_audit(
                    conn,
                    None,
                    "suppression_removed",
                    now,
                    detail={
                        "person_id": person_id,
                        "reason": reason,
                        "channel": None if channel is None else channel.value,
                        "count": lifted.rowcount,
                    },
                )
            return int(lifted.rowcount)

    def history(self, person_id: str, *, since: datetime) -> ContactHistory:
        with self._tx(read=True) as conn:
            return read_history(conn, person_id, since=utc(since))

    def histories(self, person_ids: Sequence[str], *, since: datetime) -> dict[str, ContactHistory]:
        """:meth:`history` for many people at once (unknown people get an empty history)."""
        with self._tx(read=True) as conn:
            return read_histories(conn, list(dict.fromkeys(person_ids)), since=utc(since))

    def timeline(self, intent_id: str) -> list[TimelineEvent]:
        with self._tx(read=True) as conn:
            return read_timeline(conn, intent_id)

    def counts_by_state(self) -> dict[tuple[str, str], int]:
        """(channel, state) -> number of intents."""
        with self._tx(read=True) as conn:
            return read_counts(conn)

    def stuck_sending(self, *, older_than: datetime) -> list[str]:
        """Ids of intents in ``sending`` since before ``older_than`` (candidates to reconcile)."""
        with self._tx(read=True) as conn:
            return list(
                conn.scalars(
                    select(intents.c.intent_id)
                    .where(
                        intents.c.state == IntentState.SENDING.value,
                        intents.c.sending_since < utc(older_than),
                    )
                    .order_by(intents.c.sending_since)
                )
            )

    def unpublished(self, *, older_than: datetime, limit: int = 1000) -> list[ContactIntent]:
        """Queued intents recorded before ``older_than`` that the broker never confirmed."""
        cutoff = utc(older_than)
        with self._tx(read=True) as conn:
            bodies = conn.scalars(
                select(intents.c.body)
                .where(
                    intents.c.state == IntentState.QUEUED.value,
                    intents.c.published_at.is_(None),
                    intents.c.updated_at < cutoff,
                    intents.c.expires_at > cutoff,  # a stale collection message is never sent
                )
                .order_by(intents.c.updated_at)
                .limit(limit)
            ).all()
        return [read_intent(body) for body in bodies]
