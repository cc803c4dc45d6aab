"""`dunning receipts`: receipts by channel and status over a time range, with delivery rates."""

from __future__ import annotations

import json

import typer

from dunning.cli.common import load_settings, read_ledger, time_range
from dunning.cli.markup import add_data_row

__all__ = ["receipts_command"]


def receipts_command(
    since: str = typer.Option("24h", help="Start: 24h, 7d, 30m ago, or an ISO instant."),
    until: str | None = typer.Option(None, help="End (exclusive): ISO instant; default now."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
) -> None:
    """Receipt counts by channel and status, the delivery rate (delivered / final receipts) and
    the median time from send to delivered, for receipts received in [SINCE, UNTIL)."""
    settings = load_settings(database_url=database_url)
    start, end = time_range(since, until, settings.clock().now())
    summaries = read_ledger(
        settings.database_url,
        lambda ledger: ledger.receipts_summary(since=start, until=end),
    )
    if as_json:
        out = {
            "since": start.isoformat(),
            "until": end.isoformat(),
            "channels": [
                {
                    "channel": s.channel,
                    "counts": s.counts,
                    "delivered": s.delivered,
                    "failed": s.failed,
                    "delivery_rate": s.delivery_rate,
                    "median_to_delivered_s": s.median_to_delivered_s,
                }
                for s in summaries
            ],
        }
        typer.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"receipts {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC")
    for column in (
        "channel",
        "status counts",
        "delivered",
        "failed",
        "rate",
        "median to delivered",
    ):
        table.add_column(column)
    for s in summaries:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items()))
        rate = "-" if s.delivery_rate is None else f"{s.delivery_rate:.1%}"
        median = "-" if s.median_to_delivered_s is None else f"{s.median_to_delivered_s:.1f} s"
        add_data_row(table, s.channel, counts, s.delivered, s.failed, rate, median)
    Console().print(table)
