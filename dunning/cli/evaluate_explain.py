"""`dunning evaluate --explain`: why each account gets what it gets, printed, nothing published."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import typer

from dunning.cli.common import fail
from dunning.ledger import Ledger
from dunning.producers.evaluator import evaluate
from dunning.producers.explain import explain_lines
from dunning.producers.ledger_outcomes import LedgerOutcomes
from dunning.producers.outcomes import NoOutcomes, OutcomeSource
from dunning.producers.promises import LedgerPromises
from dunning.producers.sources import BadRow, accounts_only, open_accounts
from dunning.producers.strategy import Strategy
from dunning.settings import Settings

__all__ = ["explain_accounts"]


def explain_accounts(
    location: str,
    strategy: Strategy,
    settings: Settings,
    *,
    as_of: date,
    only: Sequence[str],
    dry_run: bool,
    query: str | None,
) -> None:
    """Evaluate the book as a run would on ``as_of`` and print the explanation of each account
    in ``only`` (every account when empty), in book order. The instant is the clock's, so the
    same book, strategy, day and ledger print the same lines."""
    wanted = set(only)
    bad: list[BadRow] = []
    book = accounts_only(open_accounts(location, query=query), bad.append)
    chosen = (a for a in book if not wanted or a.account_id in wanted)
    ledger = None if dry_run else Ledger.open(settings.database_url)
    try:
        outcomes: OutcomeSource = NoOutcomes() if ledger is None else LedgerOutcomes(ledger)
        promises = None if ledger is None else LedgerPromises(ledger)
        now = settings.clock().now()
        seen: set[str] = set()
        for evaluation in evaluate(
            chosen, strategy, as_of=as_of, now=now, outcomes=outcomes, promises=promises
        ):
            seen.add(evaluation.account.account_id)
            for line in explain_lines(evaluation):
                typer.echo(line)
    finally:
        if ledger is not None:
            ledger.close()
    for row in bad:
        typer.echo(f"bad row, line {row.line}: {row.reason}", err=True)
    missing = sorted(wanted - seen)
    if missing:
        raise fail(f"not in the book (or a bad row): {', '.join(missing[:10])}")
