"""The ledger: the one record of what was sent to whom, and the claim that makes it exactly once.

Every write is one transaction. :meth:`Ledger.claim` is serialised per person (PostgreSQL: a
transaction-scoped advisory lock on the person; SQLite: ``BEGIN IMMEDIATE``), so two workers
racing for the same person never both pass the caps.

This module holds what a worker does with an intent (publish, claim, record the outcome); the
rest of :class:`Ledger` comes from one module per concern: people's suppressions and histories
(``suppression_store``), receipts and inbound messages (``receipts_store``), read-side views
(``reads``) and the repairs of the reconcile sweeper and the dead-letter tools (``repairs``).
Outside this package, the ledger's tables are read and written only through a Ledger.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update

from dunning.clock import utc
from dunning.intents import Channel, ContactIntent
from dunning.ledger import engine as engines
from dunning.ledger import transitions
from dunning.ledger.bureau_store import BureauStore
from dunning.ledger.claim_batch_pg import BatchClaims, BatchSends
from dunning.ledger.disputes import DisputeStore
from dunning.ledger.group_commit import SentRecord, record_sent_batch
from dunning.ledger.handover import HandoverStore
from dunning.ledger.publishing import insert_new_intents, mark_intents_published
from dunning.ledger.queries import Claim, intent_values
from dunning.ledger.reads import LedgerReads
from dunning.ledger.receipts_store import ReceiptStore
from dunning.ledger.repairs import LedgerRepairs
from dunning.ledger.risk_store import RiskStore
from dunning.ledger.schema import intents
from dunning.ledger.states import WAITING
from dunning.ledger.suppression_store import SuppressionStore
from dunning.ledger.visit_store import VisitStore
from dunning.records import ContactHistory, DialOutcome, GateDecision, IntentState

__all__ = ["Ledger"]

_BATCH = 500


class Ledger(
    SuppressionStore,
    ReceiptStore,
    LedgerReads,
    LedgerRepairs,
    VisitStore,
    RiskStore,
    DisputeStore,
    HandoverStore,
    BureauStore,
):
    """Intents, attempts, receipts, suppressions and audit in one SQL database."""

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
                inserted |= insert_new_intents(conn, rows)
        return inserted

    def mark_published(self, intent_ids: Iterable[str], *, now: datetime) -> None:
        """Note that the broker confirmed these intents (the sweeper stops republishing them)."""
        now = utc(now)
        ids = list(intent_ids)
        for start in range(0, len(ids), _BATCH):
            with self._tx() as conn:
                mark_intents_published(conn, ids[start : start + _BATCH], now)

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

    def batched_claims(
        self, *, worker: str, reconcile_after_s: float, application_name: str = "dunning"
    ) -> BatchClaims | None:
        """Claims of many intents per transaction on an async connection of their own
        (PostgreSQL); None on other databases, where :meth:`claim` is the way."""
        conninfo = self._async_conninfo()
        if conninfo is None:
            return None
        return BatchClaims(
            conninfo,
            worker=worker,
            reconcile_after_s=reconcile_after_s,
            application_name=self._application_name(application_name),
        )

    def batched_sends(self, *, application_name: str = "dunning") -> BatchSends | None:
        """Group-committed sends on an async connection of their own (PostgreSQL); None on
        other databases, where :meth:`record_sent_many` is the way."""
        conninfo = self._async_conninfo()
        if conninfo is None:
            return None
        return BatchSends(conninfo, application_name=self._application_name(application_name))

    def _async_conninfo(self) -> str | None:
        url = self._engine.url
        if url.get_backend_name() != "postgresql":
            return None
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _application_name(self, default: str) -> str:
        """The URL's application_name when it sets one (as the engine's connections do)."""
        return str(self._engine.url.query.get("application_name", default))

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
        """The provider accepted attempt ``attempt``; early receipts for its ref are applied.
        A batch of one of :meth:`record_sent_many`."""
        self.record_sent_many([SentRecord(intent_id, attempt, provider_ref, status, detail, now)])

    def record_sent_many(self, records: Sequence[SentRecord]) -> None:
        """Record many accepted sends in one transaction (group commit)."""
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

        The webhook's path (:meth:`store_receipt`): a repeated receipt is a no-op, and one for
        a ref the ledger does not know yet is kept and applied by record_sent.
        """
        outcome = self.store_receipt(
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
        with self._tx() as conn:
            moved = conn.execute(
                update(intents)
                .where(
                    intents.c.intent_id == intent_id,
                    intents.c.state.in_([s.value for s in WAITING]),
                )
                .values(state=state.value, sending_since=None, updated_at=now, last_error=reason)
            ).rowcount
            if moved:
                transitions.write_audit(
                    conn, intent_id, state.value, now, detail={"reason": reason}
                )
            return bool(moved)

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
