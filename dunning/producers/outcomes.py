"""What happened after earlier contacts, as the strategy's conditions need it.

The evaluator asks an :class:`OutcomeSource` once per account that has a step due, for the
events since the longest look-back of the strategy, and counts from those. A ledger-backed
source maps its receipts and call outcomes to :class:`Outcome` events:

    delivered         a delivery receipt (SMS/email/letter delivered, call answered by a person)
    unanswered_call   a call attempt that reached nobody (no answer, busy, voicemail)
    paid              a payment settling the debt
    promise_to_pay    the debtor promised to pay
    disputed          the debtor disputed the debt
    opt_out           STOP, unsubscribe or any request to stop contact
    broken_promise    a promise to pay whose day passed without the payment

``NoOutcomes`` is the default (the first run of a new book); ``InMemoryOutcomes`` is for tests.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dunning.intents import Channel

__all__ = [
    "STOP_KINDS",
    "AccountOutcomes",
    "InMemoryOutcomes",
    "NoOutcomes",
    "Outcome",
    "OutcomeKind",
    "OutcomeSource",
]


class OutcomeKind(enum.StrEnum):
    DELIVERED = "delivered"
    UNANSWERED_CALL = "unanswered_call"
    PAID = "paid"
    PROMISE_TO_PAY = "promise_to_pay"
    DISPUTED = "disputed"
    OPT_OUT = "opt_out"
    BROKEN_PROMISE = "broken_promise"


#: The kinds a strategy's ``stop_if`` may name.
STOP_KINDS = frozenset(
    {OutcomeKind.PAID, OutcomeKind.PROMISE_TO_PAY, OutcomeKind.DISPUTED, OutcomeKind.OPT_OUT}
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One event about an account; ``channel`` is the channel of the contact it answers."""

    kind: OutcomeKind
    at: datetime
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class AccountOutcomes:
    """The events of one account since some instant, with the counts conditions ask for."""

    events: tuple[Outcome, ...] = ()

    def delivered(self, channel: Channel, *, since: datetime) -> int:
        """Delivered contacts on ``channel`` at or after ``since``."""
        return sum(
            1
            for e in self.events
            if e.kind is OutcomeKind.DELIVERED and e.channel is channel and e.at >= since
        )

    def unanswered_calls(self, *, since: datetime) -> int:
        """Call attempts that reached nobody, at or after ``since``."""
        return sum(
            1 for e in self.events if e.kind is OutcomeKind.UNANSWERED_CALL and e.at >= since
        )

    def count(self, kind: OutcomeKind, *, since: datetime) -> int:
        """Events of ``kind`` at or after ``since``."""
        return sum(1 for e in self.events if e.kind is kind and e.at >= since)

    def contact_rate(self, *, since: datetime) -> float | None:
        """Share of contacts since ``since`` that got through (delivered / delivered plus
        unanswered calls); None when there was no contact to judge by."""
        got_through = self.count(OutcomeKind.DELIVERED, since=since)
        attempts = got_through + self.count(OutcomeKind.UNANSWERED_CALL, since=since)
        return None if attempts == 0 else got_through / attempts

    def stops(self) -> frozenset[OutcomeKind]:
        """Which stop kinds (paid, promise, dispute, opt-out) occurred at all."""
        return frozenset(e.kind for e in self.events if e.kind in STOP_KINDS)


class OutcomeSource(Protocol):
    def outcomes(self, account_id: str, *, since: datetime) -> AccountOutcomes:
        """Events of ``account_id`` at or after ``since`` (UTC-aware), in any order."""
        ...


class NoOutcomes:
    """No history at all: every condition sees zero deliveries and zero calls."""

    def outcomes(self, account_id: str, *, since: datetime) -> AccountOutcomes:
        return AccountOutcomes()


class InMemoryOutcomes:
    """Outcomes held in a dict, added by tests or the demo."""

    def __init__(self) -> None:
        self._events: dict[str, list[Outcome]] = defaultdict(list)

    def add(
        self, account_id: str, kind: OutcomeKind, at: datetime, channel: Channel | None = None
    ) -> None:
        self._events[account_id].append(Outcome(kind, at, channel))

    def outcomes(self, account_id: str, *, since: datetime) -> AccountOutcomes:
        return AccountOutcomes(tuple(e for e in self._events.get(account_id, ()) if e.at >= since))
