"""`dunning report variants`: contacts and deliveries per strategy variant and stage."""

from __future__ import annotations

import json
from typing import Any

import typer

from dunning.cli.bureau import bureau_report_command
from dunning.cli.common import load_settings, read_ledger, time_range
from dunning.cli.markup import add_data_row
from dunning.cli.report_rolls import rolls_command

__all__ = ["app", "variants_command"]

app = typer.Typer(no_args_is_help=True)


@app.callback()
def report() -> None:
    """Reports over the ledger (a group, so more reports can join ``variants``)."""


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@app.command("variants")
def variants_command(
    since: str = typer.Option("30d", help="Intents created from: 30d, 24h ago, or ISO instant."),
    until: str | None = typer.Option(None, help="Up to (exclusive): ISO instant; default now."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
) -> None:
    """Champion vs challenger: intents, contacts, deliveries and the delivery rate (delivered /
    contacted) per strategy variant and stage, for intents created in [SINCE, UNTIL)."""
    from dunning.ledger.reports import variant_totals

    settings = load_settings(database_url=database_url)
    start, end = time_range(since, until, settings.clock().now())
    rows = read_ledger(
        settings.database_url, lambda ledger: ledger.variant_report(since=start, until=end)
    )
    totals = variant_totals(rows)
    if as_json:
        out = {
            "since": start.isoformat(),
            "until": end.isoformat(),
            "variants": [_as_dict(t) for t in totals],
            "stages": [_as_dict(r) for r in rows],
        }
        typer.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    span = f"intents created {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"
    for title, listed in ((f"Variants, {span}", totals), ("By stage", rows)):
        table = Table(
            "strategy", "variant", "stage", "intents", "contacted", "delivered", "failed",
            "delivery rate", "not sent", title=title,
        )  # fmt: skip
        for r in listed:
            held = sum(n for state, n in r.states.items() if state in _NOT_SENT)
            add_data_row(
                table, r.strategy, r.variant, r.stage, f"{r.intents:,}", f"{r.contacted:,}",
                f"{r.delivered:,}", f"{r.failed:,}", _rate(r.delivery_rate), f"{held:,}",
            )  # fmt: skip
        console.print(table)


app.command("bureau")(bureau_report_command)

_NOT_SENT = frozenset({"suppressed", "deferred", "expired", "dead", "cancelled"})


def _as_dict(row: Any) -> dict[str, Any]:
    return {
        "strategy": row.strategy,
        "variant": row.variant,
        "stage": row.stage,
        "intents": row.intents,
        "contacted": row.contacted,
        "delivered": row.delivered,
        "failed": row.failed,
        "delivery_rate": row.delivery_rate,
        "states": dict(sorted(row.states.items())),
    }


app.command("rolls")(rolls_command)
