"""`dunning status`: queue depths per channel, delay queues and dead letters; backs an alert.

Exit codes: 0 healthy, 3 some dead-letter queue holds more than ``--dlq-threshold`` messages,
1 RabbitMQ unreachable, 2 bad settings. The default threshold is 0: every dead letter waits for
a decision (replay or discard, docs/dead-letters.md), so a non-empty dead-letter queue is
worth a look; raise the threshold for a paging alert and keep 0 for a ticket.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import typer

from dunning.cli.common import BROKER_HELP, fail, load_settings
from dunning.cli.markup import esc
from dunning.errors import BrokerError
from dunning.ops.queue_status import (
    QueueRate,
    QueueStats,
    StatusReport,
    collect_status,
    queue_rates,
)

__all__ = ["DLQ_ALERT_EXIT", "status_command"]

DLQ_ALERT_EXIT = 3


def status_command(
    broker: str | None = typer.Option(None, help=BROKER_HELP),
    dlq_threshold: int = typer.Option(
        0, min=0, help="Exit 3 when a dead-letter queue holds more than this many messages."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    watch: bool = typer.Option(
        False, "--watch", help="Refresh until interrupted, with rates since the last refresh."
    ),
    interval_s: float = typer.Option(5.0, min=0.5, help="Seconds between --watch refreshes."),
    management_url: str | None = typer.Option(
        None, help="Management API base (default http://<broker host>:15672)."
    ),
    no_management: bool = typer.Option(
        False, "--no-management", help="Use passive declares only, even if the API answers."
    ),
) -> None:
    """Show ready/unacked/consumers and oldest message per channel queue, delay and DLQ depths.

    Counts come from the RabbitMQ management API when it answers, else from passive declares
    (then unacked and a work queue's oldest-message age show as "-", and a line says why).
    A work queue with ready messages and no consumer is warned about. --watch stamps each
    refresh and adds messages/s in, out and net since the previous one. Exits 3 when any
    dead-letter queue holds more than --dlq-threshold messages (default 0), so a cron job or
    monitoring check can alert on it.
    """
    settings = load_settings(broker_url=broker)
    previous: tuple[float, StatusReport] | None = None
    while True:
        try:
            report = collect_status(
                settings.broker_url, management=management_url, use_management=not no_management
            )
        except BrokerError as exc:
            raise fail(f"cannot read queues: {exc}", code=1) from None
        taken = time.monotonic()
        rates = None if previous is None else queue_rates(previous[1], report, taken - previous[0])
        previous = (taken, report)
        over = report.over_threshold(dlq_threshold)
        if as_json:
            data = report.as_json(dlq_threshold)
            if rates is not None:
                data["rates"] = [asdict(rate) for rate in rates]
            typer.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            _render(report, dlq_threshold, rates, clear=watch)
        if not watch:
            raise typer.Exit(DLQ_ALERT_EXIT if over else 0)
        try:
            time.sleep(interval_s)  # the refresh period itself, not a stand-in for a condition
        except KeyboardInterrupt:
            raise typer.Exit(DLQ_ALERT_EXIT if over else 0) from None


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _rate(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _rate_cells(flow: QueueRate | None, dying: QueueRate | None) -> list[str]:
    """in/s, out/s and net/s of the work queue, then net/s of its dead-letter queue."""
    cells = ["-", "-", "-"]
    if flow is not None:
        cells = [
            _rate(flow.in_per_s),
            _rate(flow.out_per_s),
            _rate(flow.net_per_s, signed=True),
        ]
    return [*cells, _rate(dying.net_per_s, signed=True) if dying else "-"]


def _age(stats: QueueStats) -> str:
    age_s = stats.oldest_age_s
    if age_s is None:
        return "-"
    if age_s < 120:
        return f"{age_s:.0f}s"
    if age_s < 7200:
        return f"{age_s / 60:.0f}m"
    return f"{age_s / 3600:.1f}h"


def _render(
    report: StatusReport, dlq_threshold: int, rates: list[QueueRate] | None, *, clear: bool
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if clear:
        console.clear()
    at = f" at {report.taken_at:%Y-%m-%d %H:%M:%S} UTC" if report.taken_at else ""
    table = Table(title=f"dunning queues{at} (source: {report.source})")
    columns = ["channel", "ready", "unacked", "consumers", "oldest", "dead", "oldest dead"]
    if rates is not None:
        columns += ["in/s", "out/s", "net/s", "dead net/s"]
    for column in columns:
        table.add_column(column, justify="left" if column == "channel" else "right")
    by_name = {rate.name: rate for rate in rates or []}
    for channel, (work, dead) in report.channels.items():
        dead_text = "missing" if dead.missing else _n(dead.ready)
        if dead.ready and dead.ready > dlq_threshold:
            dead_text = f"[bold red]{dead_text}[/]"
        row = [
            esc(channel),
            "missing" if work.missing else _n(work.ready),
            _n(work.unacked),
            _n(work.consumers),
            _age(work),
            dead_text,
            _age(dead),
        ]
        if rates is not None:
            row += _rate_cells(by_name.get(work.name), by_name.get(dead.name))
        table.add_row(*row)
    console.print(table)
    if report.management_problem is not None:
        console.print(
            f"[yellow]management API {esc(report.management_problem)}: counts from passive "
            "declares; unacked and the oldest work-queue message unknown (-)[/]",
            soft_wrap=True,
        )
    for idle in report.without_consumers():
        console.print(
            f"[bold yellow]warning: {esc(idle.name)} holds {idle.ready} ready message(s) and "
            "has no consumers: is its worker running?[/]",
            soft_wrap=True,
        )
    waiting = [
        f"{q.name.removeprefix('dunning.delay.')}={q.ready}" for q in report.delay if q.ready
    ]
    total = sum(q.ready or 0 for q in report.delay)
    console.print(
        f"delay queues: {total} waiting" + (f" ({esc(', '.join(waiting))})" if waiting else "")
    )
    if report.unrouted is not None and report.unrouted.ready:
        console.print(f"[yellow]unrouted: {report.unrouted.ready} (unknown channel)[/]")
    over = report.over_threshold(dlq_threshold)
    if over:
        console.print(f"[bold red]dead letters above {dlq_threshold}: {esc(', '.join(over))}[/]")
