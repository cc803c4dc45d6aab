"""`dunning collectors add|list|retire`: the field collectors visit tasks are assigned to."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

from dunning.cli.common import fail, load_settings, read_ledger
from dunning.cli.markup import add_data_row
from dunning.visits.roster import ROSTER_COLUMNS

__all__ = ["app"]

app = typer.Typer(
    help="Field collectors: who may be assigned a visit task (docs/visits.md).",
    no_args_is_help=True,
)
_DB_HELP = "Ledger URL (default $DUNNING_DATABASE_URL)."
_ROSTER_HELP = f"CSV with the columns {','.join(ROSTER_COLUMNS)}."


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option}: {text!r} is not a date like 2027-06-30") from None


def _text(value: str, option: str, limit: int) -> str:
    value = value.strip()
    if not value or len(value) > limit or any(ch in value for ch in "\r\n\t"):
        raise fail(f"{option}: must be 1 to {limit} characters on one line")
    return value


@app.command("add")
def add_command(
    collector_id: str = typer.Argument(..., help="The collector's id (e.g. the staff number)."),
    name: str = typer.Option(..., help="Name as on the identification shown at the door."),
    credential: str = typer.Option(..., help="Credential (work permit, licence) number."),
    credential_expires: str = typer.Option(..., help="Last day the credential is valid."),
    training_expires: str = typer.Option(..., help="Last day the compliance training is valid."),
    territory: str = typer.Option(..., help="Territory worked; matches the book's column."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Add an active collector. A collector is assigned only while both the credential and
    the training are valid on the visit day (each through its expiry day), never after.

    Example: dunning collectors add C-017 --name "Zhang Wei" --credential SH-2026-0117
    --credential-expires 2027-06-30 --training-expires 2027-03-31 --territory shanghai-pudong

    Exits 2 when the id is taken or an option is malformed.
    """
    from dunning.ledger.visit_store import Collector

    settings = load_settings(database_url=database_url)
    collector = Collector(
        collector_id=_text(collector_id, "COLLECTOR_ID", 64),
        name=_text(name, "--name", 200),
        credential_no=_text(credential, "--credential", 64),
        credential_expires=_day(credential_expires, "--credential-expires"),
        training_expires=_day(training_expires, "--training-expires"),
        territory=_text(territory, "--territory", 64),
        created_at=settings.clock().now(),
    )
    if not read_ledger(settings.database_url, lambda ledger: ledger.add_collector(collector)):
        raise fail(f"collector {collector.collector_id} exists already")
    typer.echo(f"added collector {collector.collector_id} ({collector.territory})")


@app.command("import")
def import_command(
    roster: Path = typer.Argument(..., help=_ROSTER_HELP),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Add every collector of a CSV roster (dates are the last day valid). A file with a bad
    row imports nothing and names each bad line and column; ids already present are kept as
    they are and listed.

    Example: dunning collectors import config/collectors.sample.csv
    """
    from dunning.visits import VisitInputError
    from dunning.visits.roster import read_roster

    settings = load_settings(database_url=database_url)
    try:
        found = read_roster(roster, now=settings.clock().now())
    except VisitInputError as exc:
        raise fail(str(exc)) from None
    added = read_ledger(
        settings.database_url, lambda ledger: [ledger.add_collector(c) for c in found]
    )
    kept = [c.collector_id for c, new in zip(found, added, strict=True) if not new]
    typer.echo(f"imported {sum(added)} collector(s) from {roster}")
    if kept:
        typer.echo(f"already present, unchanged: {', '.join(kept)}")


@app.command("list")
def list_command(
    territory: str | None = typer.Option(None, help="Only this territory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Every collector, with whether they may be assigned today (the clock's day, UTC).

    Example: dunning collectors list --territory shanghai-pudong
    """
    settings = load_settings(database_url=database_url)
    today = settings.clock().now().date()
    found = read_ledger(
        settings.database_url, lambda ledger: ledger.collectors(territory=territory)
    )
    rows = [
        {
            "collector_id": c.collector_id,
            "name": c.name,
            "credential_no": c.credential_no,
            "credential_expires": c.credential_expires.isoformat(),
            "training_expires": c.training_expires.isoformat(),
            "territory": c.territory,
            "retired_at": None if c.retired_at is None else c.retired_at.isoformat(),
            "eligible_today": c.eligible_on(today),
        }
        for c in found
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "id", "name", "credential", "credential expires", "training expires", "territory",
        "status", title=f"collectors (eligibility on {today})",
    )  # fmt: skip
    for r in rows:
        status = "retired" if r["retired_at"] else "eligible" if r["eligible_today"] else "expired"
        add_data_row(
            table, r["collector_id"], r["name"], r["credential_no"], r["credential_expires"],
            r["training_expires"], r["territory"], status,
        )  # fmt: skip
    Console().print(table)


@app.command("retire")
def retire_command(
    collector_id: str = typer.Argument(..., help="The collector's id."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Retire a collector: never assigned again (their past visits stay on record). Open
    tasks they were on get a new team at the next sweep (`dunning visit sweep`).

    Example: dunning collectors retire C-017
    """
    settings = load_settings(database_url=database_url)
    now = settings.clock().now()
    if not read_ledger(
        settings.database_url, lambda ledger: ledger.retire_collector(collector_id, now=now)
    ):
        raise fail(f"no active collector {collector_id}")
    typer.echo(f"retired collector {collector_id}")
