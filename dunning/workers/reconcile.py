"""The reconcile sweeper: settle what a crash left behind, from the ledger's point of view.

One sweep does four things, each safe to repeat and to run in several processes at once:

1. ``sending`` older than ``reconcile_after_s`` (a worker died mid-send): if receipts arrived
   (the status callback URL carries the intent id), the intent is settled from them; otherwise
   its body is re-published so that a worker's claim reclaims and sends it. A re-publish is
   audited and not repeated within the window; extra copies are harmless (the claim sends once).
2. ``queued`` with ``published_at`` NULL for longer than ``unpublished_after_s`` (the evaluator
   died between the ledger insert and the broker confirm): re-published, then marked published.
3. ``queued`` or ``deferred`` past ``expires_at``: ``expired`` (a stale collection message is
   never sent late).
4. ``sent`` with no final receipt for longer than ``unknown_after_s``: ``unknown`` (the evaluator
   counts it as not delivered; a final receipt that comes later still applies).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, and_, select, update
from sqlalchemy.exc import SQLAlchemyError

from dunning.broker import open_publisher
from dunning.broker.base import Publisher
from dunning.broker.intent_messages import intent_message
from dunning.clock import Clock
from dunning.errors import BrokerError, DunningError, LedgerError
from dunning.ledger import Ledger
from dunning.ledger.queries import read_intent
from dunning.ledger.receipts import resolve_from_receipts
from dunning.ledger.receipts_store import sweep_unknown
from dunning.ledger.schema import audit, intents
from dunning.ledger.transitions import write_audit
from dunning.records import IntentState
from dunning.settings import Settings

__all__ = ["ReconcileReport", "Reconciler", "periodic_sweep", "report_json"]

log = structlog.get_logger(__name__)
_REPUBLISHED = "reconcile_republished"
_EXPIRABLE = (IntentState.QUEUED.value, IntentState.DEFERRED.value)


@dataclass
class ReconcileReport:
    settled: int = 0  # sending intents settled from receipts
    republished_sending: int = 0
    republished_unpublished: int = 0
    expired: int = 0
    unknown: int = 0  # sent long ago and never a final receipt

    @property
    def changed(self) -> int:
        return (
            self.settled
            + self.republished_sending
            + self.republished_unpublished
            + self.expired
            + self.unknown
        )


class Reconciler:
    """Runs sweeps over ``ledger``, re-publishing through ``publisher`` (confirms awaited)."""

    def __init__(
        self,
        ledger: Ledger,
        publisher: Publisher,
        clock: Clock,
        *,
        reconcile_after_s: float,
        unpublished_after_s: float = 60.0,
        unknown_after_s: float = 72 * 3600,
        batch_size: int = 500,
    ) -> None:
        self.ledger = ledger
        self.publisher = publisher
        self.clock = clock
        self.reconcile_after_s = reconcile_after_s
        self.unpublished_after_s = unpublished_after_s
        self.unknown_after_s = unknown_after_s
        self.batch_size = batch_size

    def sweep(self) -> ReconcileReport:
        """One pass over the four cases; raises LedgerError or BrokerError."""
        report = ReconcileReport()
        self._stuck_sending(report)
        self._unpublished(report)
        self._expired(report)
        # The evaluator treats `unknown` as not delivered, so a lost receipt cannot stall a
        # strategy's "no SMS delivered in 2 days" branch forever.
        report.unknown = len(
            sweep_unknown(
                self.ledger.engine,
                now=self.clock.now(),
                older_than=timedelta(seconds=self.unknown_after_s),
                limit=self.batch_size,
            )
        )
        if report.changed:
            log.info(
                "reconcile.swept",
                settled=report.settled,
                republished_sending=report.republished_sending,
                republished_unpublished=report.republished_unpublished,
                expired=report.expired,
                unknown=report.unknown,
            )
        return report

    # --- 1. sending too long --------------------------------------------------------------------

    def _stuck_sending(self, report: ReconcileReport) -> None:
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.reconcile_after_s)
        for intent_id in self.ledger.stuck_sending(older_than=cutoff)[: self.batch_size]:
            body = self._settle_or_mark(intent_id, now, cutoff, report)
            if body is None:
                continue
            self.publisher.publish_many([intent_message(read_intent(body))])
            report.republished_sending += 1

    def _settle_or_mark(
        self, intent_id: str, now: datetime, cutoff: datetime, report: ReconcileReport
    ) -> str | None:
        """Settle from receipts, or audit a re-publish and return the body to publish."""
        try:
            with self.ledger.engine.begin() as conn:
                row = conn.execute(
                    select(
                        intents.c.state, intents.c.attempts, intents.c.sending_since, intents.c.body
                    )
                    .where(intents.c.intent_id == intent_id)
                    .with_for_update()
                ).first()
                stale = row is not None and row.sending_since is not None
                if not stale or row is None or row.state != IntentState.SENDING.value:
                    return None  # a worker moved it meanwhile
                if row.sending_since >= cutoff:
                    return None
                settled = resolve_from_receipts(conn, intent_id, int(row.attempts), now=now)
                if settled is not None:
                    write_audit(conn, intent_id, "reconciled", now, detail={"state": settled})
                    report.settled += 1
                    return None
                if _republished_since(conn, intent_id, cutoff):
                    return None
                write_audit(
                    conn,
                    intent_id,
                    _REPUBLISHED,
                    now,
                    detail={"attempt": int(row.attempts), "sending_since": row.sending_since},
                )
                return str(row.body)
        except SQLAlchemyError as exc:
            raise LedgerError(f"reconciling {intent_id} failed: {exc}") from exc

    # --- 2. never published -----------------------------------------------------------------

    def _unpublished(self, report: ReconcileReport) -> None:
        now = self.clock.now()
        older_than = now - timedelta(seconds=self.unpublished_after_s)
        pending = self.ledger.unpublished(older_than=older_than, limit=self.batch_size)
        if not pending:
            return
        self.publisher.publish_many(intent_message(i) for i in pending)
        self.ledger.mark_published([i.intent_id for i in pending], now=now)
        report.republished_unpublished += len(pending)

    # --- 3. past expires_at -----------------------------------------------------------------

    def _expired(self, report: ReconcileReport) -> None:
        now = self.clock.now()
        try:
            with self.ledger.engine.begin() as conn:
                ids = list(
                    conn.scalars(
                        update(intents)
                        .where(intents.c.state.in_(_EXPIRABLE), intents.c.expires_at <= now)
                        .values(
                            state=IntentState.EXPIRED.value,
                            sending_since=None,
                            updated_at=now,
                            last_error="expires_at passed before sending",
                        )
                        .returning(intents.c.intent_id)
                    )
                )
                for intent_id in ids:
                    write_audit(conn, intent_id, "expired", now, detail={"by": "reconcile"})
        except SQLAlchemyError as exc:
            raise LedgerError(f"expiring intents failed: {exc}") from exc
        report.expired += len(ids)


def _republished_since(conn: Connection, intent_id: str, cutoff: datetime) -> bool:
    found = conn.scalar(
        select(audit.c.id)
        .where(and_(audit.c.intent_id == intent_id, audit.c.event == _REPUBLISHED))
        .where(audit.c.at >= cutoff)
        .limit(1)
    )
    return found is not None


def report_json(report: ReconcileReport) -> str:
    """The report as one JSON line (``dunning reconcile --json``)."""
    return json.dumps(
        {
            "settled": report.settled,
            "republished_sending": report.republished_sending,
            "republished_unpublished": report.republished_unpublished,
            "expired": report.expired,
            "unknown": report.unknown,
        }
    )


def periodic_sweep(
    settings: Settings, ledger: Ledger, clock: Clock | None = None
) -> tuple[Callable[[], Awaitable[None]], float]:
    """A worker's periodic task running one sweep in a thread, and its interval in seconds.

    ``clock`` is the worker's own (default: one made from the settings now): with DUNNING_NOW a
    clock made later, or again after a broker failure, would start over at that instant and
    see the intents the worker claimed as claimed in its future. The publisher connection is
    opened on first use and reopened after a broker failure; failures are logged and the next
    interval tries again.
    """
    clock = clock or settings.clock()
    state: dict[str, Reconciler] = {}

    def sweep() -> None:
        reconciler = state.get("r")
        if reconciler is None:
            reconciler = Reconciler(
                ledger,
                open_publisher(settings.broker_url),
                clock,
                reconcile_after_s=settings.reconcile_after_s,
                unknown_after_s=settings.unknown_after_s,
            )
            state["r"] = reconciler
        try:
            reconciler.sweep()
        except BrokerError:
            state.pop("r").publisher.close()
            raise

    async def run() -> None:
        try:
            await asyncio.to_thread(sweep)
        except DunningError as exc:
            log.warning("reconcile.failed", error=str(exc))

    return run, settings.reconcile_every_s
