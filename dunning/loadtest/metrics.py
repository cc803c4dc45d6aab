"""What a load test measured, read back from the ledger after (and during) the run.

Latency of one intent = ``finished_at`` of its sent attempt - the intent's ``created_at`` (see
the package docstring). Retries are failed attempts (each one went back through a delay queue);
throttled are attempts released after a provider 429 (they never count as a retry). The rows
come from :meth:`dunning.ledger.Ledger.intent_states` and
:meth:`~dunning.ledger.Ledger.intent_timings`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from dunning.ledger.reads import IntentTiming
from dunning.ledger.states import ALREADY_SENT
from dunning.records import IntentState

__all__ = ["IntentTiming", "LedgerTally", "percentile"]

# Final for a load test; "deferred" too: the compliance gate moved it to a later contact window
# (a retry can hit a per-day cap), so it waits in a delay queue beyond the run.
_DONE = (
    *ALREADY_SENT, IntentState.DEAD, IntentState.EXPIRED, IntentState.SUPPRESSED,
    IntentState.DEFERRED,
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
        return sum(self.by_state.get(s, 0) for s in ALREADY_SENT)
