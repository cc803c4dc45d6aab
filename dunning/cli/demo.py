"""`dunning demo`: the whole system on a small synthetic book, with nothing installed but Python."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dunning.cli.common import fail, load_settings
from dunning.cli.markup import add_data_row, esc
from dunning.logs import configure_logging
from dunning.ops.demo import DemoReport, run_demo
from dunning.settings import Settings

__all__ = ["demo_command"]


def _default_now() -> datetime:
    # 13:30 UTC is inside the Shanghai window (21:30, before 22:00) and New York's (08:30, 09:30
    # in summer), so a demo run at any hour shows sends in both countries. No instant is inside
    # every window of the book: Shanghai's closes at 14:00 UTC, before Los Angeles reaches 08:00
    # (16:00 UTC in winter). Accounts further west are deferred, and the summary says why.
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, 13, 30, tzinfo=UTC)


def demo_command(
    accounts: int = typer.Option(40, min=1, max=5000, help="Synthetic accounts to generate."),
    seed: int = typer.Option(7, help="Seed of the synthetic book (same seed, same book)."),
    at: datetime | None = typer.Option(
        None,
        help="Instant to run the demo at, e.g. 2026-11-28T14:30:00+00:00 (default: today "
        "13:30 UTC: 21:30 in Shanghai and 08:30 in New York (09:30 in summer), inside their "
        "contact windows; before 08:00 in Denver and Los Angeles (and in Chicago in winter), "
        "whose contacts are deferred). The summary shows the instant in each zone of the book.",
    ),
    broker: str | None = typer.Option(
        None,
        help="Run on a real broker, e.g. amqp://guest:guest@localhost:5672/demo. Use a vhost "
        "of its own: deferred demo intents wait in its delay queues after the run.",
    ),
    timeout_s: float = typer.Option(60.0, help="Give up waiting for workers after this long."),
    console: bool = typer.Option(
        False,
        "--console",
        help="Afterwards, serve the operator console on the demo's ledger and broker until "
        "Ctrl-C, with a user `demo` (admin) whose password is printed.",
    ),
    console_port: int = typer.Option(8090, help="Port of the console with --console."),
    book: Path | None = typer.Option(
        None,
        help="Run on this book (CSV or JSONL, docs/accounts.md) instead of a synthetic one, "
        "e.g. config/accounts.visits.csv with --at 2026-11-28T13:30:00+00:00.",
    ),
    collectors: Path | None = typer.Option(
        None,
        help="Collectors' roster (CSV) that staffs the field visits, e.g. "
        "config/collectors.sample.csv (docs/visits.md).",
    ),
) -> None:
    """Run the embedded demo end to end and print what happened.

    Generates a book of CN and US accounts in several stages (a few opted out, disputed or
    paid), evaluates it with config/strategy.toml, publishes the contact intents, and runs the
    SMS, voice, email and letter workers in this process against the sandbox stand-ins (a
    Twilio-compatible API and an SMTP sink on loopback, a print-vendor outbox folder). The
    ledger is SQLite under var/demo/. With --broker the same demo runs on RabbitMQ.
    """
    settings = load_settings(broker_url=broker)
    if at is not None and at.tzinfo is None:
        raise fail("--at needs a UTC offset, e.g. 2026-11-28T14:30:00+00:00")
    now = at or _default_now()
    home = settings.data_dir / "demo"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    # The summary is the demo's output; every log line goes to a file beside the ledger.
    with (home / "demo.log").open("w", encoding="utf-8") as log_stream:
        configure_logging("json", settings.log_level, stream=log_stream)
        try:
            report = asyncio.run(
                run_demo(
                    settings,
                    accounts=accounts,
                    seed=seed,
                    now=now,
                    timeout_s=timeout_s,
                    book=book,
                    roster=collectors,
                )
            )
        finally:
            configure_logging(settings.log_format, settings.log_level)
    _print(report, now)
    if console:
        _serve_console(settings, home, now, console_port)
    if not report.settled:
        raise typer.Exit(1)


def _serve_console(settings: Settings, home: Path, now: datetime, port: int) -> None:
    """The console on the demo's ledger and (in-process) broker, until Ctrl-C."""
    import dataclasses
    import secrets

    from dunning.console.security import hash_password
    from dunning.console.server import ConsoleOptions, serve
    from dunning.ledger.console_store import ConsoleStore

    settings = dataclasses.replace(
        settings,
        database_url=f"sqlite:///{home / 'dunning.db'}",
        letter_outbox=home / "letters" / "outbox",
        now=now,
    )
    password = secrets.token_urlsafe(12)
    store = ConsoleStore.open(settings.database_url)
    try:
        store.add_user("demo", "admin", hash_password(password), now=now, replace=True)
    finally:
        store.close()
    options = ConsoleOptions(port=port)
    Console().print(
        f"[bold]Console[/bold]: {options.address}  user [bold]demo[/bold], password "
        f"[bold]{esc(password)}[/bold]  (Ctrl-C stops it)"
    )
    with (home / "console.log").open("w", encoding="utf-8") as log_stream:
        configure_logging("json", settings.log_level, stream=log_stream)
        try:
            serve(settings, options)
        finally:
            configure_logging(settings.log_format, settings.log_level)


def _print(report: DemoReport, now: datetime) -> None:
    console = Console()
    console.print(
        f"[bold]dunning demo[/bold] at {now.isoformat()}: {report.accounts} accounts, "
        f"{len(report.intents)} intents published, {report.elapsed_s:.1f} s"
    )
    by_stage: Counter[tuple[str, str]] = Counter(
        (i.stage.value, i.channel.value) for i in report.intents
    )
    channels = sorted({c for _, c in by_stage})
    table = Table(title="Intents by stage and channel")
    table.add_column("stage")
    for channel in channels:
        table.add_column(channel, justify="right")
    for stage in ("pre_due", "early", "mid", "late"):
        if any(s == stage for s, _ in by_stage):
            add_data_row(table, stage, *[by_stage.get((stage, c), 0) for c in channels])
    console.print(table)

    console.print(_local_time_table(report))

    outcomes = Table(title="Outcomes (ledger state by channel)")
    outcomes.add_column("channel")
    outcomes.add_column("state")
    outcomes.add_column("intents", justify="right")
    for (channel, state), count in sorted(report.states.items()):
        add_data_row(outcomes, channel, state, count)
    console.print(outcomes)

    if report.deferred:
        console.print(_deferred_table(report))

    if report.visit_tasks:
        console.print(_visit_table(report))

    if report.skipped:
        skipped = Table(title="Not contacted by the evaluator (reason)")
        skipped.add_column("reason")
        skipped.add_column("accounts", justify="right")
        for reason, count in report.skipped.most_common():
            add_data_row(skipped, reason, count)
        console.print(skipped)

    console.print(
        "Dead-letter queues: " + esc(", ".join(f"{c}={n}" for c, n in report.dead_letters.items()))
    )
    if report.dead_reasons:
        dead = Table(title="Dead letters (see `dunning dlq list`)")
        dead.add_column("channel")
        dead.add_column("error")
        dead.add_column("reason")
        dead.add_column("messages", justify="right")
        for (channel, error_class, reason), count in sorted(report.dead_reasons.items()):
            add_data_row(dead, channel, error_class, reason, count)
        console.print(dead)
    console.print(
        f"Twilio stand-in: {report.twilio_requests} requests, {report.callbacks} signed status "
        f"callbacks to the webhook; SMTP sink: {report.emails} emails"
    )
    console.print(f"Letters (PDF + manifest): {esc(report.letters_dir)}")
    console.print(f"Ledger: {esc(report.database)}")
    console.print(f"Logs (JSON lines): {esc(report.log_file)}")
    for note in report.notes:
        console.print(f"[yellow]warning:[/yellow] {esc(note)}")


def _local_time_table(report: DemoReport) -> Table:
    clocks = Table(title="This instant in each time zone of the book (closed: contacts wait)")
    for column in ("time zone", "jurisdictions", "local time", "window", "open"):
        clocks.add_column(column, no_wrap=True)
    for zone in report.local_times:
        clocks.add_row(
            escape(zone.zone),
            escape(", ".join(zone.jurisdictions)),
            zone.local,
            escape(zone.window or "no pack in force"),
            "yes" if zone.open else "[yellow]closed[/]",
        )
    return clocks


def _visit_table(report: DemoReport) -> Table:
    tasks = Table(title="Field visit tasks (`dunning visit tasks`)")
    for column in ("account", "territory", "state", "team", "window closes (UTC)", "reason"):
        tasks.add_column(column)
    for t in report.visit_tasks:
        closes = f"{t.window_closes_at:%Y-%m-%d %H:%M}"
        add_data_row(tasks, t.account_id, t.territory, t.state, ", ".join(t.team), closes,
                     t.reason or "")  # fmt: skip
    return tasks


def _deferred_table(report: DemoReport) -> Table:
    deferred = Table(title="Deferred (they wait in a delay queue for the reason given)")
    deferred.add_column("channel")
    deferred.add_column("time zone", no_wrap=True)
    deferred.add_column("reason")
    deferred.add_column("intents", justify="right")
    for (channel, zone, reason), count in sorted(report.deferred.items()):
        deferred.add_row(escape(channel), escape(zone), escape(reason), str(count))
    return deferred
