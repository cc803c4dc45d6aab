"""Read-side reports over intents: contacts and deliveries per strategy variant and stage.

The champion/challenger comparison behind ``dunning report variants``: every intent carries its
strategy, variant and stage, and its ledger state says how far it got.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select

from dunning.clock import utc
from dunning.ledger.schema import intents
from dunning.records import IntentState

__all__ = ["CONTACTED_STATES", "VariantRow", "variant_report", "variant_totals"]

#: States of an intent that reached (or may have reached) the provider: a contact was made.
CONTACTED_STATES = frozenset(
    {
        IntentState.SENDING,
        IntentState.SENT,
        IntentState.DELIVERED,
        IntentState.FAILED,
        IntentState.UNDELIVERED,
        IntentState.UNKNOWN,
    }
)
_FAILED = frozenset({IntentState.FAILED, IntentState.UNDELIVERED})


@dataclass
class VariantRow:
    """Intents of one strategy variant (and stage, or every stage when ``stage`` is "*").

    ``contacted``: intents that reached the provider; ``delivered``: of those, confirmed by a
    receipt; ``delivery_rate`` = delivered / contacted (None with no contact). ``states`` counts
    every ledger state, including suppressed, deferred, expired and dead.
    """

    strategy: str
    variant: str
    stage: str
    intents: int = 0
    contacted: int = 0
    delivered: int = 0
    failed: int = 0
    states: dict[str, int] = field(default_factory=dict)

    @property
    def delivery_rate(self) -> float | None:
        return None if self.contacted == 0 else self.delivered / self.contacted

    def add(self, state: str, count: int) -> None:
        self.states[state] = self.states.get(state, 0) + count
        self.intents += count
        if state in CONTACTED_STATES:
            self.contacted += count
        if state == IntentState.DELIVERED:
            self.delivered += count
        if state in _FAILED:
            self.failed += count


def variant_report(conn: Connection, *, since: datetime, until: datetime) -> list[VariantRow]:
    """One row per (strategy, variant, stage) of intents created in [since, until), sorted."""
    query = (
        select(
            intents.c.strategy, intents.c.variant, intents.c.stage, intents.c.state, func.count()
        )
        .where(intents.c.created_at >= utc(since), intents.c.created_at < utc(until))
        .group_by(intents.c.strategy, intents.c.variant, intents.c.stage, intents.c.state)
    )
    counted = conn.execute(query).all()
    rows: dict[tuple[str, str, str], VariantRow] = {}
    for strategy, variant, stage, state, count in counted:
        key = (strategy, variant, stage)
        rows.setdefault(key, VariantRow(strategy, variant, stage)).add(state, int(count))
    return [rows[key] for key in sorted(rows)]


def variant_totals(rows: Iterable[VariantRow]) -> list[VariantRow]:
    """The rows summed over stages: one per (strategy, variant), stage "*"."""
    totals: dict[tuple[str, str], VariantRow] = {}
    for row in rows:
        total = totals.setdefault(
            (row.strategy, row.variant), VariantRow(row.strategy, row.variant, "*")
        )
        for state, count in row.states.items():
            total.add(state, count)
    return [totals[key] for key in sorted(totals)]
