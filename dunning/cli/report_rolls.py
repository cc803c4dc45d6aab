"""`dunning report rolls`: the roll-rate matrix between two evaluation days."""

from __future__ import annotations

import json
from datetime import datetime

import typer

from dunning.cli.common import fail, load_settings, read_ledger
from dunning.cli.markup import add_data_row
from dunning.producers.rolls import BUCKETS, RollMatrix, roll_matrices

__all__ = ["rolls_command"]


def rolls_command(
    from_day: datetime = typer.Option(
        ..., "--from", formats=["%Y-%m-%d"], help="The start day (its buckets are the rows)."
    ),
    to_day: datetime = typer.Option(
        ..., "--to", formats=["%Y-%m-%d"], help="The end day (its buckets are the columns)."
    ),
    by: str | None = typer.Option(
        None, help="One matrix per segment or per variant (as on the start day)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
) -> None:
    """Roll rates: how many accounts moved from each bucket on --from (current, 1-30, 31-60,
    61-90, 90+, paid, charged_off) to each bucket on --to, with the share of the row.

    Every evaluation run records each account's bucket of the day; accounts recorded on --from
    but not on --to are counted as "not on the end day".

    Example: dunning report rolls --from 2026-11-01 --to 2026-12-01 --by segment
    """
    if by not in (None, "segment", "variant"):
        raise fail(f"--by {by!r}: expected segment or variant")
    if to_day < from_day:
        raise fail(f"--to {to_day:%Y-%m-%d} is before --from {from_day:%Y-%m-%d}")
    settings = load_settings(database_url=database_url)
    start, end = read_ledger(
        settings.database_url,
        lambda ledger: (ledger.buckets_on(from_day.date()), ledger.buckets_on(to_day.date())),
    )
    matrices, missing = roll_matrices(start, end, by=by)
    span = {"from": f"{from_day:%Y-%m-%d}", "to": f"{to_day:%Y-%m-%d}"}
    if as_json:
        out = {
            **span,
            "by": by,
            "not_on_end_day": missing,
            "matrices": {group or "all": m.as_dict() for group, m in matrices.items()},
        }
        typer.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    from rich.console import Console

    console = Console()
    if not matrices:
        console.print(f"no account recorded on both {span['from']} and {span['to']}")
    for group, matrix in matrices.items():
        console.print(_table(matrix, f"Roll rates {span['from']} -> {span['to']}", group, by))
    console.print(f"{missing:,} accounts of {span['from']} not on the end day")


def _table(matrix: RollMatrix, title: str, group: str, by: str | None) -> object:
    from rich.table import Table

    if by is not None:
        title += f", {by} {group}"
    table = Table("from \\ to", *BUCKETS, "accounts", title=title)
    for start in BUCKETS:
        total = matrix.row_total(start)
        if total == 0:
            continue
        cells = []
        for end in BUCKETS:
            count = matrix.counts.get((start, end), 0)
            share = matrix.share(start, end) or 0.0
            cells.append(f"{count:,} ({share:.1%})" if count else "-")
        add_data_row(table, start, *cells, f"{total:,}")
    return table
