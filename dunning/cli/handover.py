"""`dunning handover build|verify`: hand accounts to the law firm as evidence bundles."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

from dunning.channels.letter.fonts import find_cjk_font
from dunning.channels.letter.law_firms import LawFirms
from dunning.cli.common import fail, load_settings, read_ledger
from dunning.errors import PermanentChannelError
from dunning.intents import Stage
from dunning.ledger import Ledger
from dunning.ops.handover import Handover, build_handover, demand_sent, verify_bag
from dunning.producers.accounts import Account
from dunning.producers.sources import BadRowLog, accounts_only, open_accounts
from dunning.producers.strategy import load_strategy

__all__ = ["app"]

app = typer.Typer(
    help="Legal handover: evidence bundles (BagIt) for the law firm, and their check.",
    no_args_is_help=True,
)

_DB_HELP = "Ledger URL (default $DUNNING_DATABASE_URL)."


def _after_demand(ledger: Ledger, account: Account) -> bool:
    return demand_sent(ledger.account_record(account.account_id))


@app.command("build")
def build_command(
    accounts: list[str] = typer.Argument(None, help="Account ids to hand over."),
    book: str = typer.Option(
        ..., help="The book of accounts (.csv, .jsonl or a database URL), as for evaluate."
    ),
    from_strategy: bool = typer.Option(
        False,
        "--from-strategy",
        help="Every account of the book in the late stage whose lawyer letter or final notice "
        "was sent.",
    ),
    documents: Path = typer.Option(
        Path("var/legal/documents"),
        help="The lender's documents: one folder per account id (contract*.pdf, ...).",
    ),
    outbox: Path = typer.Option(
        Path("var/legal/outbox"), help="The law firms' outbox: <engagement_id>/<account_id>/."
    ),
    as_of: str | None = typer.Option(None, help="Day of the check, YYYY-MM-DD (default today)."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
) -> None:
    """Gate each account and build its bag; print one JSON line per account.

    Refused (with rule ids): time-barred (limitation computed and shown), disputed and not
    verified, bankrupt, attorney-represented, paid, documents the engagement requires missing,
    a letter that is not the one sent. A built bag adds a `litigation` suppression of the debt.

    Examples:
      dunning handover build CN-100007 --book config/accounts.sample.csv
      dunning handover build --from-strategy --book accounts.csv --as-of 2026-12-01

    Exits 1 when any account was refused.
    """
    settings = load_settings(database_url=database_url)
    now = settings.clock().now()
    day = date.fromisoformat(as_of) if as_of else now.date()
    firms = LawFirms.load(settings.config_dir / "law_firms.toml")
    font = find_cjk_font()
    wanted = set(accounts or ())
    if not wanted and not from_strategy:
        raise fail("name account ids or give --from-strategy")
    strategy = load_strategy(settings.config_dir / "strategy.toml")
    book_rows = list(accounts_only(open_accounts(book), BadRowLog()))

    def run(ledger: Ledger) -> list[Handover]:
        chosen = [a for a in book_rows if a.account_id in wanted]
        if from_strategy:
            late = [a for a in book_rows if a.account_id not in wanted
                    and (band := strategy.stage_for(a.days_past_due(day))) is not None
                    and band.stage is Stage.LATE]  # fmt: skip
            chosen += [a for a in late if _after_demand(ledger, a)]
        done = []
        for account in chosen:
            try:
                engagement = firms.for_jurisdiction(account.jurisdiction)
            except PermanentChannelError:
                raise fail(f"no law firm engagement for {account.jurisdiction}") from None
            done.append(build_handover(
                ledger, account, engagement, documents=documents, letters=settings.letter_outbox,
                outbox=outbox, as_of=day, now=now, font=font, emails=settings.email_archive,
            ))  # fmt: skip
        return done

    missing = wanted - {a.account_id for a in book_rows}
    if missing:
        raise fail(f"not in the book: {', '.join(sorted(missing))}")
    results = read_ledger(settings.database_url, run)
    for result in results:
        typer.echo(json.dumps({
            "account_id": result.account_id,
            "bag": None if result.bag is None else str(result.bag),
            "refused": [{"rule_id": r.rule_id, "reason": r.reason} for r in result.refusals],
            "limitation": None if result.limitation is None else result.limitation.as_dict(),
        }, ensure_ascii=False))  # fmt: skip
    if any(r.refusals for r in results):
        raise typer.Exit(1)


@app.command("verify")
def verify_command(
    bag: Path = typer.Argument(..., exists=True, file_okay=False, help="The bag's folder."),
    database_url: str | None = typer.Option(None, help=_DB_HELP),
    offline: bool = typer.Option(
        False, "--offline", help="Check the bag alone, without the ledger's recorded hashes."
    ),
) -> None:
    """Check a bag: BagIt fixity, and every notice's SHA-256 against the one recorded when it
    was sent (in the bag, and in the ledger unless --offline). Exits 1 with the problems.

    Example: dunning handover verify var/legal/outbox/ENG-CN-2026-0001/CN-100007
    """
    if offline:
        problems = verify_bag(bag)
    else:
        settings = load_settings(database_url=database_url)
        problems = read_ledger(settings.database_url, lambda ledger: verify_bag(bag, ledger))
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{bag}: valid")
