"""`dunning evaluate FILE`: evaluate a book of accounts and publish the contact intents."""

from __future__ import annotations

import math
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import typer
from rich.console import Console
from rich.table import Table

from dunning.cli.common import BROKER_HELP, fail, load_settings
from dunning.cli.evaluate_progress import PROGRESS_EVERY_ROWS, count_rows, evaluation_progress
from dunning.cli.markup import add_data_row
from dunning.clock import Clock
from dunning.errors import ConfigError, DunningError
from dunning.producers.evaluator import EvaluationSummary, Precheck, evaluate
from dunning.producers.ledger_outcomes import LedgerOutcomes, LedgerPrecheck
from dunning.producers.outcomes import NoOutcomes, OutcomeSource
from dunning.producers.publisher import IntentPublisher
from dunning.producers.sources import BadRowLog, accounts_only, open_accounts
from dunning.producers.strategy import Strategy, load_strategy
from dunning.settings import Settings

__all__ = ["app", "evaluate_command", "evaluation_day", "parse_interval_s", "run_every", "run_once"]

log = structlog.get_logger(__name__)
app = typer.Typer(no_args_is_help=True)
_INTERVAL = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HISTORY_DAYS = 8  # the gate's caps look back at most 7 days (docs/compliance.md)


def parse_interval_s(text: str) -> int:
    """'15m' -> 900; accepts s, m, h and d; raises ConfigError otherwise."""
    match = _INTERVAL.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"--every {text!r}: expected a positive interval like 30s, 15m, 1h")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass
class RunReport:
    """What one evaluation run did, for the summary tables."""

    as_of: date
    dry_run: bool
    summary: EvaluationSummary = field(default_factory=EvaluationSummary)
    bad_rows: BadRowLog = field(default_factory=BadRowLog)
    published: int = 0
    already_known: int = 0


class Backends:
    """The broker publisher, the ledger and the compliance gate of a real (non-dry) run."""

    def __init__(self, settings: Settings) -> None:
        from dunning.broker import open_publisher, topology_for
        from dunning.ledger import Ledger

        self.ledger: Any = Ledger.open(settings.database_url)
        try:
            self.broker = open_publisher(settings.broker_url, topology_for(settings))
        except BaseException:
            self.ledger.close()
            raise
        self.gate: Any = None
        packs = settings.config_dir / "compliance.toml"
        if packs.exists():
            from dunning.compliance import ComplianceGate, load_packs

            self.gate = ComplianceGate(load_packs(packs))

    def precheck(self, now: datetime) -> Precheck | None:
        """The gate run early with the person's ledger history (None without rule packs)."""
        if self.gate is None:
            return None
        return LedgerPrecheck(
            self.gate, self.ledger, now, since=now - timedelta(days=_HISTORY_DAYS)
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
    console: Console | None = None,
    progress_every: int = PROGRESS_EVERY_ROWS,
) -> RunReport:
    """Evaluate ``location`` once; with ``backends`` None (dry run) nothing leaves the process.

    Progress goes to ``console`` (default stderr) when it is a terminal, else to the log every
    ``progress_every`` rows (see dunning/cli/evaluate_progress.py).
    """
    report = RunReport(as_of=as_of, dry_run=backends is None)
    rows = open_accounts(location, query=query)
    accounts = accounts_only(rows, report.bad_rows)
    precheck = backends.precheck(now) if backends is not None else None
    outcomes: OutcomeSource = NoOutcomes()
    publisher = None
    if backends is not None:
        ledger = backends.ledger
        outcomes = LedgerOutcomes(ledger)
        publisher = IntentPublisher(
            backends.broker,
            record=lambda xs: ledger.record_published(xs, now=now),
            mark=lambda ids: ledger.mark_published(ids, now=now),
            suppress=lambda items, debts: ledger.record_account_flags(items, debts, now=now),
        )
    out = console or Console(stderr=True)
    total = count_rows(str(location))
    with evaluation_progress(out, total=total, every_rows=progress_every) as progress:
        for evaluation in evaluate(
            accounts, strategy, as_of=as_of, now=now, outcomes=outcomes, precheck=precheck
        ):
            report.summary.add(evaluation)
            if backends is not None and publisher is not None:
                account = evaluation.account
                publisher.submit(
                    evaluation.intents,
                    evaluation.suppressions,
                    account=(account.person_id, account.account_id),
                )
            bad = report.bad_rows.count
            progress.update(report.summary.accounts + bad, report.summary.intent_count, bad)
    if publisher is not None:
        publisher.flush()
        report.published = publisher.published
        report.already_known = publisher.already_known
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


def print_report(report: RunReport, console: Console) -> None:
    """The summary: intents by stage/channel/variant, who was not contacted and why, bad rows."""
    s = report.summary
    head = f"as of {report.as_of.isoformat()}: {s.accounts:,} accounts, {s.intent_count:,} intents"
    if report.dry_run:
        head += " (dry run: nothing published or recorded)"
    else:
        head += f", {report.published:,} published, {report.already_known:,} already known"
    console.print(head, soft_wrap=True)
    intents = Table("stage", "channel", "variant", "intents", title="Intents")
    for (stage, channel, variant), count in sorted(s.intents.items()):
        add_data_row(intents, stage, channel, variant, f"{count:,}")
    console.print(intents)
    stages = Table("stage", "accounts", title="Accounts by stage")
    for stage, count in sorted(s.stages.items()):
        add_data_row(stages, stage, f"{count:,}")
    console.print(stages)
    if s.blocked or s.skipped:
        skipped = Table("reason", "accounts blocked", "steps skipped", title="Not contacted")
        for reason in sorted(set(s.blocked) | set(s.skipped)):
            add_data_row(skipped, reason, f"{s.blocked[reason]:,}", f"{s.skipped[reason]:,}")
        console.print(skipped)
    bad = report.bad_rows
    if bad.count:
        rows = Table("line", "reason", title=f"Bad rows: {bad.count:,} skipped")
        for row in bad.first:
            add_data_row(rows, row.line, row.reason)
        console.print(rows)
        if bad.count > len(bad.first):
            console.print(f"... and {bad.count - len(bad.first):,} more bad rows", soft_wrap=True)


@app.command()
def evaluate_command(
    file: str | None = typer.Argument(
        None,
        help="Accounts: a .csv, a .jsonl, or a SQLAlchemy URL (default: DUNNING_ACCOUNTS_SOURCE).",
        show_default=False,
    ),
    as_of: datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Evaluation day (default: today by the clock, UTC)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print only; publish and record nothing."
    ),
    every: str | None = typer.Option(None, help="Keep running: evaluate every 15m, 1h, ..."),
    strategy: Path | None = typer.Option(
        None, help="Strategy file (default config/strategy.toml)."
    ),
    query: str | None = typer.Option(None, help="SQL query when FILE is a database URL."),
    broker: str | None = typer.Option(None, help=BROKER_HELP),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
    progress_every: int = typer.Option(
        PROGRESS_EVERY_ROWS,
        min=1,
        help="Without a terminal, log evaluation_progress every N rows (and every 10 s).",
    ),
) -> None:
    """Evaluate a book of accounts into contact intents and publish them.

    Each account's days past due pick a stage and its id a strategy variant; the steps due today
    become intents on dunning.intents, recorded in the ledger first so that re-running the same
    day publishes nothing new. Flags (paid, dispute, cease, opt-outs, ...) skip contacts and are
    recorded as suppressions. Bad rows are reported with their line numbers and skipped.

    Example: dunning evaluate config/accounts.sample.csv --as-of 2026-11-28 --dry-run
    """
    settings = load_settings(broker_url=broker, database_url=database_url)
    file = file or settings.accounts_source
    if not file:
        raise fail(
            "no accounts to evaluate: give FILE, or set DUNNING_ACCOUNTS_SOURCE (a .csv or "
            ".jsonl path, or a database URL; DUNNING_ACCOUNTS_SOURCE_FILE for a URL with a "
            "password)"
        )
    console = Console()
    try:
        plan = load_strategy(strategy or settings.config_dir / "strategy.toml")
        interval_s = parse_interval_s(every) if every is not None else None
        # A scheduler opens backends per run, so a broker down at start is retried, not fatal.
        backends = None if dry_run or interval_s is not None else Backends(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except DunningError as exc:
        raise fail(str(exc), code=1) from None
    if interval_s is not None:
        _schedule(
            file, plan, settings, interval_s,
            as_of=as_of, dry_run=dry_run, query=query, progress_every=progress_every,
        )  # fmt: skip
        return
    now = settings.clock().now()
    try:
        day = as_of.date() if as_of is not None else now.date()
        report = run_once(
            file, plan, as_of=day, now=now, backends=backends, query=query,
            progress_every=progress_every,
        )  # fmt: skip
        print_report(report, console)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except DunningError as exc:
        raise fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        if backends is not None:
            backends.close()


def _schedule(
    file: str,
    plan: Strategy,
    settings: Settings,
    interval_s: int,
    *,
    as_of: datetime | None,
    dry_run: bool,
    query: str | None,
    progress_every: int,
) -> None:
    """``--every``: evaluate at each tick until SIGTERM or SIGINT, opening backends per run."""
    console = Console()
    clock = settings.clock()
    first_day = as_of.date() if as_of is not None else None

    def run(now: datetime, start: datetime) -> None:
        day = evaluation_day(now, start, first_day)
        backends = None if dry_run else Backends(settings)
        try:
            report = run_once(
                file, plan, as_of=day, now=now, backends=backends, query=query,
                progress_every=progress_every,
            )  # fmt: skip
        finally:
            if backends is not None:
                backends.close()
        print_report(report, console)

    stop = threading.Event()
    try:
        with _stop_on_signals(stop):
            runs = run_every(run, clock=clock, interval_s=interval_s, stop=stop)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    console.print(f"stopped after {runs:,} runs")


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
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
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
