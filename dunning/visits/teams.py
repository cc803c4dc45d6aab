"""Who may visit: a team of at least the pack's ``min_collectors`` eligible collectors.

A collector is eligible for a task when they work its territory, are not retired, and neither
their credential nor their training has expired on the task's local visit day. Among the
eligible, the least loaded (fewest open tasks) go first, then by id, so the choice is stable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date

from dunning.ledger.visit_store import Collector, VisitTask

__all__ = ["choose_team", "open_loads"]


def choose_team(
    candidates: Iterable[Collector],
    *,
    territory: str,
    day: date,
    size: int,
    loads: Counter[str],
) -> tuple[tuple[str, ...], str | None]:
    """(team, None) when ``size`` eligible collectors work ``territory`` on ``day``; else
    ((), the reason the task waits, with the counts that explain it)."""
    if not territory:
        return (), "no territory on the account: no team can be chosen"
    local = [c for c in candidates if c.territory == territory]
    eligible = sorted(
        (c for c in local if c.eligible_on(day)),
        key=lambda c: (loads[c.collector_id], c.collector_id),
    )
    if len(eligible) >= size:
        return tuple(c.collector_id for c in eligible[:size]), None
    retired = sum(c.retired_at is not None for c in local)
    credential = sum(c.retired_at is None and c.credential_expires < day for c in local)
    training = sum(
        c.retired_at is None and c.credential_expires >= day and c.training_expires < day
        for c in local
    )
    return (), (
        f"no eligible team in territory {territory!r}: {len(eligible)} eligible of "
        f"{len(local)} collectors, {size} needed (credential expired {credential}, "
        f"training expired {training}, retired {retired})"
    )


def open_loads(tasks: Sequence[VisitTask]) -> Counter[str]:
    """Open tasks per collector id."""
    return Counter(member for task in tasks for member in task.team)
