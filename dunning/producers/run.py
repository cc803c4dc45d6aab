"""Evaluate a book of accounts and publish its contact intents: the producer's one use case.

A run reads the accounts (a file, a database query, or any iterable of accounts), evaluates each
with the strategy and the compliance pre-check over the person's ledger history, and publishes
the intents through :class:`~dunning.producers.publisher.IntentPublisher`: recorded in the
ledger, published with confirms and marked published, in batches, with the flag suppressions of
a batch written before its intents go out. Without backends (a dry run) nothing leaves the
process. `dunning evaluate` runs it once or on a schedule (:func:`evaluate_every`), `dunning
demo` on a synthetic book (dunning/ops/demo.py).
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import structlog

from dunning.broker import open_publisher, topology_for
from dunning.broker.base import Publisher
from dunning.clock import Clock
from dunning.compliance import ComplianceGate, load_packs
from dunning.errors import ConfigError, DunningError
from dunning.intents import ContactIntent
from dunning.ledger import Ledger
from dunning.producers.accounts import Account
from dunning.producers.evaluator import EvaluationSummary, Precheck, evaluate
from dunning.producers.ledger_outcomes import LedgerOutcomes, LedgerPrecheck
from dunning.producers.outcomes import NoOutcomes, OutcomeSource
from dunning.producers.progress import ProgressFactory, count_rows, logged_progress
from dunning.producers.promises import LedgerPromises
from dunning.producers.publisher import IntentPublisher
from dunning.producers.risk_log import RiskLog
from dunning.producers.sources import BadRowLog, accounts_only, open_accounts
from dunning.producers.strategy import Strategy
from dunning.settings import Settings

__all__ = [
    "Backends",
    "IntentFilter",
    "RunReport",
    "evaluate_and_publish",
    "evaluate_every",
    "evaluation_day",
    "run_every",
    "run_once",
    "stop_on_signals",
]

log = structlog.get_logger(__name__)
_HISTORY_DAYS = 8  # the gate's caps look back at most 7 days (docs/compliance.md)

#: What to publish of an evaluated intent: the intent (changed or not), or None to hold it back.
IntentFilter = Callable[[ContactIntent], ContactIntent | None]


@dataclass
class RunReport:
    """What one evaluation run did, for the summary tables."""

    as_of: date
    dry_run: bool
    summary: EvaluationSummary = field(default_factory=EvaluationSummary)
    bad_rows: BadRowLog = field(default_factory=BadRowLog)
    published: int = 0
    already_known: int = 0


@dataclass
class Backends:
    """The broker publisher, the ledger and the compliance gate of a real (non-dry) run;
    ``gate`` is None without rule packs (no pre-check)."""

    ledger: Ledger
    broker: Publisher
    gate: ComplianceGate | None = None

    @classmethod
    def open(cls, settings: Settings) -> Backends:
        """The ledger (migrated), the broker (topology declared unless switched off) and the
        gate of ``config_dir/compliance.toml`` when that file exists."""
        ledger = Ledger.open(settings.database_url)
        try:
            broker = open_publisher(settings.broker_url, topology_for(settings))
        except BaseException:
            ledger.close()
            raise
        gate = None
        packs = settings.config_dir / "compliance.toml"
        if packs.exists():
            gate = ComplianceGate(load_packs(packs))
        return cls(ledger=ledger, broker=broker, gate=gate)

    def precheck(self, now: datetime) -> Precheck | None:
        """The gate run early with the person's ledger history (None without rule packs)."""
        if self.gate is None:
            return None
        return LedgerPrecheck(
            self.gate, self.ledger, now, since=now - timedelta(days=_HISTORY_DAYS)
        )

    def intent_publisher(self, now: datetime) -> IntentPublisher:
        """A publisher that records each batch in the ledger, publishes what is new and marks
        it published; flag suppressions go to the ledger first."""
        ledger = self.ledger
        return IntentPublisher(
            self.broker,
            record=lambda xs: ledger.record_published(xs, now=now),
            mark=lambda ids: ledger.mark_published(ids, now=now),
            suppress=lambda items, debts: ledger.record_account_flags(items, debts, now=now),
            pipelined=True,  # a batch is written while the next one is evaluated
        )

    def close(self) -> None:
        self.broker.close()
        self.ledger.close()


def run_once(
    location: str,
    strategy: Strategy,
    *,
    as_of: date,
    now: datetime,
    backends: Backends | None,
    query: str | None = None,
    progress: ProgressFactory | None = None,
) -> RunReport:
    """Evaluate the accounts at ``location`` (a .csv, a .jsonl or a database URL with
    ``query``) once; bad rows are counted in the report and skipped."""
    bad_rows = BadRowLog()
    accounts = accounts_only(open_accounts(location, query=query), bad_rows)
    return evaluate_and_publish(
        accounts,
        strategy,
        as_of=as_of,
        now=now,
        backends=backends,
        bad_rows=bad_rows,
        total_rows=count_rows(str(location)),
        progress=progress,
    )


def evaluate_and_publish(
    accounts: Iterable[Account],
    strategy: Strategy,
    *,
    as_of: date,
    now: datetime,
    backends: Backends | None,
    bad_rows: BadRowLog | None = None,
    total_rows: int | None = None,
    progress: ProgressFactory | None = None,
    intent_filter: IntentFilter | None = None,
) -> RunReport:
    """Evaluate ``accounts`` and publish their intents; with ``backends`` None (dry run)
    nothing leaves the process.

    ``bad_rows`` is the log the account source counts its bad rows in, ``total_rows`` the rows
    it expects (for the ETA). ``progress`` opens the run's progress (default: log events, see
    dunning/producers/progress.py). ``intent_filter`` sees every intent before it is published.
    """
    report = RunReport(
        as_of=as_of,
        dry_run=backends is None,
        bad_rows=bad_rows if bad_rows is not None else BadRowLog(),
    )
    precheck = backends.precheck(now) if backends is not None else None
    outcomes: OutcomeSource = NoOutcomes()
    publisher = None
    risk_log = None
    promises = None
    if backends is not None:
        promises = LedgerPromises(backends.ledger)
        outcomes = LedgerOutcomes(backends.ledger)
        publisher = backends.intent_publisher(now)
        risk_log = RiskLog(backends.ledger, as_of=as_of, now=now)
    log.info("evaluation_started", total_rows=total_rows)
    with (progress or logged_progress())(total_rows) as shown:
        for evaluation in evaluate(
            accounts,
            strategy,
            as_of=as_of,
            now=now,
            outcomes=outcomes,
            precheck=precheck,
            promises=promises,
        ):
            report.summary.add(evaluation)
            if risk_log is not None:
                risk_log.add(evaluation)
            if publisher is not None:
                account = evaluation.account
                publisher.submit(
                    _filtered(evaluation.intents, intent_filter),
                    evaluation.suppressions,
                    account=(account.person_id, account.account_id),
                )
            bad = report.bad_rows.count
            shown.update(report.summary.accounts + bad, report.summary.intent_count, bad)
    if publisher is not None:
        publisher.flush()
        report.published = publisher.published
        report.already_known = publisher.already_known
    if risk_log is not None:
        risk_log.flush()
    log.info(
        "evaluation_done",
        as_of=as_of.isoformat(),
        accounts=report.summary.accounts,
        intents=report.summary.intent_count,
        published=report.published,
        bad_rows=report.bad_rows.count,
        dry_run=report.dry_run,
    )
    return report


def _filtered(
    intents: Iterable[ContactIntent], intent_filter: IntentFilter | None
) -> list[ContactIntent]:
    if intent_filter is None:
        return list(intents)
    return [kept for intent in intents if (kept := intent_filter(intent)) is not None]


def evaluate_every(
    location: str,
    strategy: Strategy,
    settings: Settings,
    *,
    interval_s: float,
    first_day: date | None,
    dry_run: bool,
    stop: threading.Event,
    query: str | None = None,
    progress: ProgressFactory | None = None,
    on_report: Callable[[RunReport], object] = lambda _report: None,
) -> int:
    """Evaluate ``location`` at every tick of the settings' clock until ``stop`` is set; each
    run opens its own backends (a broker down at one tick is retried at the next) and hands its
    report to ``on_report``. Returns the runs (see :func:`run_every`)."""

    def run(now: datetime, start: datetime) -> None:
        day = evaluation_day(now, start, first_day)
        backends = None if dry_run else Backends.open(settings)
        try:
            report = run_once(
                location, strategy, as_of=day, now=now, backends=backends, query=query,
                progress=progress,
            )  # fmt: skip
        finally:
            if backends is not None:
                backends.close()
        on_report(report)

    return run_every(run, clock=settings.clock(), interval_s=interval_s, stop=stop)


def evaluation_day(now: datetime, start: datetime, first_day: date | None) -> date:
    """The day a scheduled run at ``now`` evaluates: it moves with the clock (UTC date), and
    ``first_day`` (--as-of) only sets where the schedule started at ``start``."""
    if first_day is None:
        return now.date()
    return first_day + (now.date() - start.date())


def run_every(
    run: Callable[[datetime, datetime], object],
    *,
    clock: Clock,
    interval_s: float,
    stop: threading.Event,
    wait: Callable[[float], bool] | None = None,
) -> int:
    """Call ``run(now, start)`` at every tick of ``clock`` until ``stop`` is set; returns the runs.

    Ticks fall at ``start + k * interval_s`` (``start``: the clock when called); a run that
    overruns skips the ticks it missed rather than running back to back. ``wait(timeout_s)``
    sleeps and returns True once stopped (default ``stop.wait``; tests pass one that advances
    a ManualClock). A run that raises a DunningError other than ConfigError (broker or ledger
    down) is logged and tried again at the next tick; a ConfigError ends the loop.
    """
    sleep = wait or stop.wait
    start = clock.now()
    runs = 0
    while not stop.is_set():
        now = clock.now()
        runs += 1
        try:
            run(now, start)
            failed = False
        except ConfigError:
            raise
        except DunningError as exc:
            failed = True
            log.error(
                "evaluation_run_failed", run=runs, error_class=type(exc).__name__, reason=str(exc)
            )
        after = clock.now()
        ticks_done = math.floor((after - start).total_seconds() / interval_s) + 1
        next_tick = start + timedelta(seconds=ticks_done * interval_s)
        log.info(
            "evaluation_run",
            run=runs,
            ok=not failed,
            started=now.isoformat(),
            run_s=round((after - now).total_seconds(), 3),
            next_tick=next_tick.isoformat(),
        )
        if sleep(max(0.0, (next_tick - after).total_seconds())):
            break
    return runs


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the current run finishes first); restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    received: list[int] = []

    def handle(signum: int, _frame: object) -> None:
        # Only set flags here: logging from a signal handler can deadlock on the log writer's
        # lock if the signal lands while the main thread is writing a line.
        received.append(signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            log.info("evaluation_stopping", signal=signal.Signals(received[0]).name)
