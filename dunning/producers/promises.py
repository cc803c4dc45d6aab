"""Promises to pay as the evaluator sees them: open (no collection step until the day passes),
kept (the book shows a payment since the promise), or broken (the day passed unpaid).

A promise comes from the book (``promise_to_pay_until``), from ``dunning promise add``, from an
SMS reply or from the call's keypad; the last three are in the ledger (``promises``). The
evaluator asks a :class:`PromiseSource` for the account's open promise; the run records what
became of it (:mod:`dunning.producers.risk_log`). A broken promise sends the strategy's
``[followups.broken_promise]`` step the first day after it was due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from dunning.ledger import Ledger
from dunning.ledger.risk_store import Promise
from dunning.producers.accounts import Account

__all__ = [
    "InMemoryPromises",
    "LedgerPromises",
    "NoPromises",
    "OpenPromise",
    "PromiseSource",
    "PromiseStatus",
    "account_promise",
    "follow_up_due",
    "promise_status",
]

PromiseStatus = Literal["open", "kept", "broken"]


@dataclass(frozen=True, slots=True)
class OpenPromise:
    pay_by: date
    promised_on: date | None  # None: the book's promise, made on a day the book does not say
    promise_id: int | None = None  # None: not (yet) in the ledger
    source: str = "book"


class PromiseSource(Protocol):
    def open_promise(self, account_id: str) -> OpenPromise | None: ...


class NoPromises:
    def open_promise(self, account_id: str) -> OpenPromise | None:
        return None


class InMemoryPromises:
    """Open promises held in a dict, for tests and dry runs."""

    def __init__(self) -> None:
        self.promises: dict[str, OpenPromise] = {}

    def open_promise(self, account_id: str) -> OpenPromise | None:
        return self.promises.get(account_id)


class LedgerPromises:
    """The ledger's promises; :meth:`prefetch` reads a batch of accounts at once."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._cache: dict[str, list[Promise]] = {}

    def prefetch(self, account_ids: Sequence[str]) -> None:
        self._cache = self._ledger.promises_of(list(dict.fromkeys(account_ids)))

    def _of(self, account_id: str) -> list[Promise]:
        if account_id not in self._cache:
            self._cache.update(self._ledger.promises_of([account_id]))
        return self._cache.get(account_id, [])

    def open_promise(self, account_id: str) -> OpenPromise | None:
        return _open(self._of(account_id))

    def broken_count(self, account_id: str, *, since: datetime) -> int:
        """Promises of the account closed as broken at or after ``since``."""
        return sum(
            1
            for p in self._of(account_id)
            if p.status == "broken" and p.closed_at is not None and p.closed_at >= since
        )


def _open(rows: Sequence[Promise]) -> OpenPromise | None:
    for row in reversed(rows):
        if row.status == "open":
            return OpenPromise(row.pay_by, row.promised_on, row.id, row.source)
    return None


def account_promise(account: Account, source: PromiseSource) -> OpenPromise | None:
    """The ledger's open promise of the account, else the book's."""
    recorded = source.open_promise(account.account_id)
    if recorded is not None:
        return recorded
    if account.promise_to_pay_until is not None:
        return OpenPromise(account.promise_to_pay_until, None)
    return None


def promise_status(account: Account, promise: OpenPromise, as_of: date) -> PromiseStatus:
    """Kept once the book shows a payment since the promise (or the debt paid); open up to and
    including its day; broken after."""
    paid = account.last_payment_date
    if account.paid or (
        paid is not None and promise.promised_on is not None and paid >= promise.promised_on
    ):
        return "kept"
    if as_of <= promise.pay_by:
        return "open"
    return "broken"


def follow_up_due(promise: OpenPromise, as_of: date) -> bool:
    """Whether a broken promise's follow-up goes out today: the day after it was due, or (a
    ledger promise still open) the first run after that."""
    return as_of == promise.pay_by + timedelta(days=1) or (
        promise.promise_id is not None and as_of > promise.pay_by
    )
