"""`dunning promise add ACCOUNT --date DAY`: record a promise to pay taken by phone or at a desk."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

import typer

from dunning.cli.common import fail, load_settings
from dunning.ledger import Ledger
from dunning.promise_replies import MAX_PROMISE_DAYS

__all__ = ["app"]

app = typer.Typer(help="Promises to pay.", no_args_is_help=True)


@app.command("add")
def add_command(
    account: str = typer.Argument(..., help="The account (debt) id, as in the book."),
    day: datetime = typer.Option(
        ..., "--date", formats=["%Y-%m-%d"], help="The day the debtor promised to pay by."
    ),
    amount: str | None = typer.Option(None, help="The amount promised (default: not stated)."),
    person: str | None = typer.Option(
        None, help="The person id (default: the person of the account's latest intent)."
    ),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
) -> None:
    """Record a promise to pay: collection steps for the account stop until the day has passed.

    A payment in the book on a later evaluation closes the promise as kept; no payment by the
    day closes it as broken and sends the strategy's broken_promise follow-up the next day.
    The day must be from today (by the clock) to 30 days ahead. The promise shows in
    `dunning intent show` of the account's latest intent.

    Example: dunning promise add CN-100002 --date 2026-12-10 --amount 1520.50
    """
    settings = load_settings(database_url=database_url)
    now = settings.clock().now()
    pay_by = day.date()
    if not 0 <= (pay_by - now.date()).days <= MAX_PROMISE_DAYS:
        raise fail(
            f"--date {pay_by}: a promise is from today ({now.date()}) to "
            f"{MAX_PROMISE_DAYS} days ahead"
        )
    value = None
    if amount is not None:
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise fail(f"--amount {amount!r} is not a decimal amount like 1520.50") from None
        if not value.is_finite() or value <= 0:
            raise fail(f"--amount {amount!r} must be above 0")
    ledger = Ledger.open(settings.database_url)
    try:
        promise = ledger.add_promise(
            account, person, pay_by=pay_by, amount=value, source="cli", now=now
        )
    except LookupError as exc:
        raise fail(f"{exc.args[0]}: give --person") from None
    finally:
        ledger.close()
    typer.echo(
        f"promise {promise.id} for {account}: pay by {pay_by}"
        + ("" if value is None else f", {value}")
        + (f" (timeline: dunning intent show {promise.intent_id})" if promise.intent_id else "")
    )
