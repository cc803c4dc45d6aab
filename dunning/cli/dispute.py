"""`dunning dispute open|verify`: disputes taken by an agent, and the verification that ends one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from dunning.cli.common import fail, load_settings, read_ledger
from dunning.compliance.packs import load_packs
from dunning.ledger import Ledger
from dunning.receipts.disputes import DisputeService

__all__ = ["app"]

app = typer.Typer(
    help="Disputes: open one an agent took, record the verification that lifts the hold.",
    no_args_is_help=True,
)

_DB_HELP = "Ledger URL (default $DUNNING_DATABASE_URL)."


def _service(ledger: Ledger) -> DisputeService:
    settings = load_settings()
    return DisputeService(
        ledger, settings.clock(), load_packs(settings.config_dir / "compliance.toml")
    )


@app.command("open")
def open_command(
    account_id: str = typer.Argument(..., help="The account (debt) disputed."),
    note: str = typer.Option("", help="What the debtor said, for the record (no contact data)."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Record a dispute an agent took by phone or post: contact about the debt stops at once
    and what was queued is cancelled.

    Example: dunning dispute open US-200001 --note "says the amount is wrong"

    Exits 1 when the ledger does not know the account.
    """
    settings = load_settings(database_url=database_url)

    def run(ledger: Ledger) -> object:
        return asyncio.run(_service(ledger).from_operator(account_id, note=note))

    opened = read_ledger(settings.database_url, run)
    if opened is None:
        raise fail(f"no account {account_id} in the ledger", code=1)
    typer.echo(json.dumps({"account_id": account_id, **_fields(opened)}, indent=2))


@app.command("verify")
def verify_command(
    account_id: str = typer.Argument(..., help="The account (debt) whose dispute is answered."),
    document: Path = typer.Option(
        ...,
        "--document",
        exists=True,
        dir_okay=False,
        readable=True,
        help="The verification (PDF or image): a copy of the debt's record sent to the debtor.",
    ),
    outbox: Path | None = typer.Option(
        None, help="Where the print vendor picks it up (default $DUNNING_LETTER_OUTBOX)."
    ),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Send the verification and lift the dispute hold on the debt.

    The document is copied into the letter outbox under verifications/ with a manifest holding
    its SHA-256, every live dispute hold of the debt is lifted, and the audit records
    `dispute_verified` with the document's hash (see `dunning intent show`). Remove the
    `disputed` flag from the book too, or the next evaluation holds the debt again.

    Example: dunning dispute verify US-200001 --document statement-2026-11.pdf
    """
    settings = load_settings(database_url=database_url)
    target = outbox or settings.letter_outbox

    def run(ledger: Ledger) -> object:
        return asyncio.run(_service(ledger).verify(account_id, document, target))

    result = read_ledger(settings.database_url, run)
    typer.echo(json.dumps({"account_id": account_id, **_fields(result)}, indent=2))


def _fields(value: object) -> dict[str, object]:
    names = getattr(value, "__slots__", ())
    return {name: getattr(value, name) for name in names}
