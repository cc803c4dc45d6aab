"""`dunning evaluate FILE`: evaluate a book of accounts and publish the contact intents.

The run itself is dunning/producers/run.py; this module parses the options and prints.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dunning.cli.common import BROKER_HELP, fail, load_settings
from dunning.cli.evaluate_explain import explain_accounts
from dunning.cli.evaluate_progress import terminal_progress
from dunning.cli.markup import add_data_row
from dunning.errors import ConfigError
from dunning.producers.progress import PROGRESS_EVERY_ROWS
from dunning.producers.run import Backends, RunReport, evaluate_every, run_once, stop_on_signals
from dunning.producers.strategy import load_strategy

__all__ = ["evaluate_command", "parse_interval_s", "print_report"]

_INTERVAL = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval_s(text: str) -> int:
    """'15m' -> 900; accepts s, m, h and d; raises ConfigError otherwise."""
    match = _INTERVAL.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"--every {text!r}: expected a positive interval like 30s, 15m, 1h")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


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
    explain: bool = typer.Option(
        False,
        "--explain",
        help="Print why each account gets what it gets (stage, segment and its rule, score and "
        "reason codes, variant, steps chosen and skipped) instead of publishing; the accounts "
        "are the ACCOUNT ids after FILE (default: every account). Reads the ledger's history "
        "unless --dry-run.",
    ),
    accounts: list[str] | None = typer.Argument(
        None, help="With --explain: the account ids to explain.", show_default=False
    ),
) -> None:
    """Evaluate a book of accounts into contact intents and publish them.

    Each account's days past due pick a stage and its id a strategy variant; the steps due today
    become intents on dunning.intents, recorded in the ledger first so that re-running the same
    day publishes nothing new. Flags (paid, dispute, cease, opt-outs, ...) skip contacts and are
    recorded as suppressions. Bad rows are reported with their line numbers and skipped.

    Example: dunning evaluate config/accounts.sample.csv --as-of 2026-11-28 --dry-run

    Example: dunning evaluate config/accounts.sample.csv CN-100001 --explain --dry-run
    --as-of 2026-12-02 --strategy config/strategy.segmented.toml
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
    plan = load_strategy(strategy or settings.config_dir / "strategy.toml")
    if explain:
        day = as_of.date() if as_of is not None else settings.clock().now().date()
        explain_accounts(
            file, plan, settings, as_of=day, only=accounts or (), dry_run=dry_run, query=query
        )
        return
    if accounts:
        raise fail(f"ACCOUNT ids ({', '.join(accounts[:3])}) are only taken with --explain")
    interval_s = parse_interval_s(every) if every is not None else None
    progress = terminal_progress(Console(stderr=True), every_rows=progress_every)
    if interval_s is not None:
        # A scheduler opens backends per run, so a broker down at start is retried, not fatal.
        stop = threading.Event()
        metrics = _serve_metrics(settings.metrics_port)
        with stop_on_signals(stop):
            runs = evaluate_every(
                file, plan, settings, interval_s=interval_s,
                first_day=as_of.date() if as_of is not None else None, dry_run=dry_run,
                stop=stop, query=query, progress=progress,
                on_report=lambda report: _reported(report, console, metrics),
            )  # fmt: skip
        console.print(f"stopped after {runs:,} runs")
        return
    backends = None if dry_run else Backends.open(settings)
    now = settings.clock().now()
    try:
        day = as_of.date() if as_of is not None else now.date()
        report = run_once(
            file, plan, as_of=day, now=now, backends=backends, query=query, progress=progress
        )
        print_report(report, console)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        if backends is not None:
            backends.close()


def _serve_metrics(port: int | None) -> Any:
    """Evaluator metrics on ``port`` (DUNNING_METRICS_PORT) in scheduler mode; None without."""
    if port is None:
        return None
    from dunning.producers.metrics import EvaluatorMetrics

    metrics = EvaluatorMetrics()
    metrics.serve(port)
    return metrics


def _reported(report: RunReport, console: Console, metrics: Any) -> None:
    if metrics is not None:
        metrics.observe(report)
    print_report(report, console)
