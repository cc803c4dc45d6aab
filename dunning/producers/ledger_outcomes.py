"""The ledger as the evaluator's :class:`~dunning.producers.outcomes.OutcomeSource`.

Maps what the ledger knows about an account's earlier intents to outcome events:

    intent state delivered                         → delivered (on the intent's channel)
    voice attempt dial outcome no_answer, busy,
      voicemail, not_in_service                    → unanswered_call
    a live suppression with reason opt_out         → opt_out; dispute → disputed; paid → paid;
                                                     promise_to_pay → promise_to_pay

A suppression with bounds (a promise to pay from the book's ``promise_to_pay_until``) is not a
standing outcome: it ends on its own, the book states it on every run and the gate honours it
until then, so it must not stop the account for the whole look-back.

Intents in state ``unknown`` (no final receipt in time) are not delivered, by design. The
evaluator calls :meth:`LedgerOutcomes.prefetch` once per batch of accounts, so a book costs a
few queries per batch instead of three per account.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from dunning.compliance import ComplianceGate
from dunning.intents import ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.account_flags import ACCOUNT_FLAG, BOOK_OWNED
from dunning.ledger.reads import AccountEvent
from dunning.producers.outcomes import AccountOutcomes, Outcome, OutcomeKind
from dunning.records import ContactHistory, GateDecision

__all__ = ["LedgerOutcomes", "LedgerPrecheck"]

_SUPPRESSION_KINDS = {
    "opt_out": OutcomeKind.OPT_OUT,
    "dispute": OutcomeKind.DISPUTED,
    "disputed": OutcomeKind.DISPUTED,
    "paid": OutcomeKind.PAID,
    "promise_to_pay": OutcomeKind.PROMISE_TO_PAY,
}


class LedgerPrecheck:
    """The compliance gate run early over each person's ledger history (the evaluator's
    pre-check); :meth:`prefetch` reads a batch of people in two queries.

    The book-owned flag suppressions of the intent's own debt (hardship, promise, time-barred)
    are left out: the row being evaluated states them afresh (the evaluator has applied them),
    while the ledger's copies are only replaced after the batch, so a cleared hardship would
    otherwise hold the debt back for one more run.
    """

    def __init__(
        self, gate: ComplianceGate, ledger: Ledger, now: datetime, *, since: datetime
    ) -> None:
        self._gate, self._ledger, self._now, self._since = gate, ledger, now, since
        self._histories: dict[str, ContactHistory] = {}

    def prefetch(self, person_ids: Sequence[str]) -> None:
        self._histories = self._ledger.histories(person_ids, since=self._since)

    def __call__(self, intent: ContactIntent) -> GateDecision:
        history = self._histories.get(intent.person_id)
        if history is None:
            history = self._ledger.history(intent.person_id, since=self._since)
        restated = [
            s
            for s in history.suppressions
            if s.source == ACCOUNT_FLAG and s.reason in BOOK_OWNED and s.debt_id == intent.debt_id
        ]
        if restated:
            kept = tuple(s for s in history.suppressions if s not in restated)
            history = dataclasses.replace(history, suppressions=kept)
        return self._gate.precheck(intent, history, self._now)


class LedgerOutcomes:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._cache: dict[str, AccountOutcomes] = {}
        self._cached_since: datetime | None = None

    def prefetch(self, account_ids: Sequence[str], *, since: datetime) -> None:
        """Read the outcomes of ``account_ids`` in one go; replaces the previous batch."""
        self._cache = self._read(list(dict.fromkeys(account_ids)), since)
        self._cached_since = since

    def outcomes(self, account_id: str, *, since: datetime) -> AccountOutcomes:
        cached = self._cache.get(account_id)
        if cached is not None and self._cached_since is not None and since >= self._cached_since:
            return AccountOutcomes(tuple(e for e in cached.events if e.at >= since or _standing(e)))
        return self._read([account_id], since)[account_id]

    def _read(self, account_ids: list[str], since: datetime) -> dict[str, AccountOutcomes]:
        found = self._ledger.account_events(account_ids, since=since)
        return {a: AccountOutcomes(tuple(_outcomes(found.get(a, ())))) for a in account_ids}


def _outcomes(events: Sequence[AccountEvent]) -> list[Outcome]:
    """The ledger's events as outcomes; a suppression whose reason is no outcome is left out."""
    outcomes = []
    for event in events:
        if event.kind == "delivered":
            outcomes.append(Outcome(OutcomeKind.DELIVERED, event.at, event.channel))
        elif event.kind == "unanswered_call":
            outcomes.append(Outcome(OutcomeKind.UNANSWERED_CALL, event.at, event.channel))
        else:
            kind = _SUPPRESSION_KINDS.get(event.reason or "")
            if kind is not None:
                outcomes.append(Outcome(kind, event.at, event.channel))
    return outcomes


def _standing(event: Outcome) -> bool:
    """Suppressions stand until removed, whenever they were made."""
    return event.kind not in (OutcomeKind.DELIVERED, OutcomeKind.UNANSWERED_CALL)
