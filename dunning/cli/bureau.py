"""`dunning bureau export` and `dunning report bureau`: a cycle's bureau file, and its counts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from dunning.cli.common import fail, load_settings

__all__ = ["app", "bureau_report_command", "export_command"]

app = typer.Typer(no_args_is_help=True)

_CYCLE_HELP = "Reporting cycle, YYYY-MM (a calendar month)."
_DB_HELP = "Ledger URL (default $DUNNING_DATABASE_URL)."


@app.callback()
def bureau() -> None:
    """Credit-bureau reporting: the records the bureau step wrote, as files (docs/bureau.md)."""


def _cycle(value: str) -> str:
    from dunning.bureau.export import check_cycle

    try:
        return check_cycle(value)
    except ValueError as exc:
        raise fail(f"--cycle: {exc}") from None


def _records(ledger: Any, cycle: str, jurisdiction: str | None = None) -> Iterator[Any]:
    from dunning.bureau.records import record_from_row

    for row in ledger.cycle_rows(cycle, jurisdiction=jurisdiction):
        yield record_from_row(row)


def _exclusions(ledger: Any, cycle: str) -> list[Any]:
    from dunning.bureau.export import Exclusion

    return [Exclusion(*row) for row in ledger.cycle_exclusions(cycle)]


@app.command("export")
def export_command(
    cycle: str = typer.Option(..., "--cycle", help=_CYCLE_HELP),
    fmt: str = typer.Option(
        ...,
        "--format",
        help="metro2 (US accounts, CDIA 426-byte character format) or cn-csv "
        "(CN accounts, the column contract of docs/bureau.md).",
    ),
    out: Path = typer.Option(..., "--out", help="Folder for the file and its manifest."),
    furnisher_id: str = typer.Option(
        "DUNNING", help="Metro 2 identification number of the furnisher (base segment 21-40)."
    ),
    reporter_name: str = typer.Option("DUNNING", help="Metro 2 header reporter name."),
    reporter_address: str = typer.Option("", help="Metro 2 header reporter address."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Write the cycle's bureau file and a manifest into OUT.

    The file holds every record the bureau step wrote for the cycle, in account order:
    metro2-YYYY-MM.txt or cn-YYYY-MM.csv. manifest-YYYY-MM-FORMAT.json gives its SHA-256, the
    records by status, and the accounts the gate kept out with their rule id. Exporting the
    same cycle again writes the same bytes.

    Example: dunning bureau export --cycle 2026-11 --format metro2 --out var/bureau
    """
    from dunning.bureau.export import FORMATS, JURISDICTION, export_cycle
    from dunning.bureau.metro2 import Furnisher
    from dunning.cli.common import open_ledger

    cycle = _cycle(cycle)
    if fmt not in FORMATS:
        raise fail(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    settings = load_settings(database_url=database_url)
    furnisher = Furnisher(furnisher_id, reporter_name, reporter_address)
    ledger = open_ledger(settings.database_url)
    try:
        result = export_cycle(
            _records(ledger, cycle, JURISDICTION[fmt]), _exclusions(ledger, cycle), cycle=cycle,
            fmt=fmt,  # checked against FORMATS above
            out_dir=out, furnisher=furnisher,
        )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc), code=1) from None
    finally:
        ledger.close()
    data = result.manifest_data
    typer.echo(
        f"{result.file}: {data['records']} records, {len(data['excluded'])} excluded, "
        f"sha256 {data['sha256']}\n{result.manifest}"
    )


def bureau_report_command(
    cycle: str = typer.Option(..., "--cycle", help=_CYCLE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Counts of one reporting cycle: records by status and compliance condition, accounts
    excluded by rule id, deletions, and first-party notices still owed.

    Example: dunning report bureau --cycle 2026-11
    """
    from dunning.bureau.report import cycle_report
    from dunning.cli.common import open_ledger

    cycle = _cycle(cycle)
    settings = load_settings(database_url=database_url)
    ledger = open_ledger(settings.database_url)
    try:
        report = cycle_report(
            cycle, _records(ledger, cycle), _exclusions(ledger, cycle), settings.clock().now()
        )
    finally:
        ledger.close()
    data = report.as_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    from dunning.cli.markup import add_data_row

    table = Table("what", "key", "count", title=f"Bureau cycle {cycle}")
    for key, count in report.by_status.most_common():
        add_data_row(table, "status", key, f"{count:,}")
    for key, count in report.by_condition.most_common():
        add_data_row(table, "compliance condition", key, f"{count:,}")
    for key, count in report.excluded_by_rule.most_common():
        add_data_row(table, "excluded", key, f"{count:,}")
    add_data_row(table, "deleted", "", f"{report.deleted:,}")
    add_data_row(table, "notices owed", "", f"{report.notices_owed:,}")
    Console().print(table)
