"""What a load test measured, read back from the ledger after (and during) the run.

Latency of one intent = ``finished_at`` of its sent attempt - the intent's ``created_at`` (see
the package docstring). Retries are failed attempts (each one went back through a delay queue);
throttled are attempts released after a provider 429 (they never count as a retry).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select

from dunning.ledger.schema import attempts, intents

__all__ = ["IntentTiming", "LedgerTally", "percentile", "read_timings", "tally"]

# Final for a load test; "deferred" too: the compliance gate moved it to a later contact window
# (a retry can hit a per-day cap), so it waits in a delay queue beyond the run.
_DONE = (
    "sent", "delivered", "failed", "undelivered", "dead", "expired", "suppressed", "deferred",
)  # fmt: skip


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class LedgerTally:
    """Intents of the run by state, as the live display shows them."""

    by_state: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(n for state, n in self.by_state.items() if state in _DONE)

    @property
    def sent(self) -> int:
        return sum(self.by_state.get(s, 0) for s in ("sent", "delivered", "undelivered", "failed"))


def tally(engine: Engine, account_prefix: str) -> LedgerTally:
    query = (
        select(intents.c.state, func.count())
        .where(intents.c.account_id.like(f"{account_prefix}%"))
        .group_by(intents.c.state)
    )
    with engine.connect() as conn:
        return LedgerTally({str(state): int(n) for state, n in conn.execute(query)})


@dataclass(frozen=True, slots=True)
class IntentTiming:
    intent_id: str
    created_at: datetime
    state: str
    sent_at: datetime | None
    failed_attempts: int
    released_attempts: int

    @property
    def latency_s(self) -> float | None:
        if self.sent_at is None:
            return None
        return (self.sent_at - self.created_at).total_seconds()


def read_timings(engine: Engine, account_prefix: str) -> list[IntentTiming]:
    """One row per intent of the run, with its send time and failed/released attempt counts."""
    query = (
        select(
            intents.c.intent_id,
            intents.c.created_at,
            intents.c.state,
            attempts.c.outcome,
            attempts.c.finished_at,
        )
        .select_from(intents.outerjoin(attempts, attempts.c.intent_id == intents.c.intent_id))
        .where(intents.c.account_id.like(f"{account_prefix}%"))
    )
    rows: dict[str, dict[str, object]] = {}
    outcomes: dict[str, Counter[str]] = {}
    with engine.connect() as conn:
        for intent_id, created_at, state, outcome, finished_at in conn.execute(query):
            row = rows.setdefault(intent_id, {"created": created_at, "state": state, "sent": None})
            counts = outcomes.setdefault(intent_id, Counter())
            if outcome is not None:
                counts[outcome] += 1
            if outcome == "sent":
                row["sent"] = finished_at
    return [
        IntentTiming(
            intent_id=intent_id,
            created_at=row["created"],  # type: ignore[arg-type]
            state=str(row["state"]),
            sent_at=row["sent"],  # type: ignore[arg-type]
            failed_attempts=outcomes[intent_id]["failed"],
            released_attempts=outcomes[intent_id]["released"],
        )
        for intent_id, row in rows.items()
    ]
