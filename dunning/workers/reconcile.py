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
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta

import structlog

from dunning.broker import open_publisher
from dunning.broker.base import Publisher
from dunning.broker.intent_messages import intent_message
from dunning.clock import Clock
from dunning.errors import BrokerError, DunningError
from dunning.settings import Settings
from dunning.workers.ports import ReconcileLedger

__all__ = ["ReconcileReport", "Reconciler", "periodic_sweep", "report_json"]

log = structlog.get_logger(__name__)


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


@dataclass(eq=False)  # a service: equal only to itself
class Reconciler:
    """Runs sweeps over ``ledger``, re-publishing through ``publisher`` (confirms awaited)."""

    ledger: ReconcileLedger
    publisher: Publisher
    clock: Clock
    _: KW_ONLY
    reconcile_after_s: float
    unpublished_after_s: float = 60.0
    unknown_after_s: float = 72 * 3600
    batch_size: int = 500

    def sweep(self) -> ReconcileReport:
        """One pass over the four cases; raises LedgerError or BrokerError."""
        report = ReconcileReport()
        self._stuck_sending(report)
        self._unpublished(report)
        self._expired(report)
        # The evaluator treats `unknown` as not delivered, so a lost receipt cannot stall a
        # strategy's "no SMS delivered in 2 days" branch forever.
        report.unknown = len(
            self.ledger.sweep_unknown(
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
            # Settled from receipts, or a re-publish audited (not repeated within the window).
            stuck = self.ledger.reconcile_stuck(intent_id, now=now, cutoff=cutoff)
            if stuck.settled is not None:
                report.settled += 1
            if stuck.republish is None:
                continue
            self.publisher.publish_many([intent_message(stuck.republish)])
            report.republished_sending += 1

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
        report.expired += len(self.ledger.expire_overdue(now=self.clock.now()))


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
    settings: Settings, ledger: ReconcileLedger, clock: Clock | None = None
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
