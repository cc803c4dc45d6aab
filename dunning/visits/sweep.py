"""Keeping tasks honest over time: assign the ones that wait, expire the ones nobody visited.

A task is visited only inside its window; once the window has closed it is settled as
``expired`` with the reason, never handed to a team late. The visit worker runs
:func:`sweep` every minute and ``dunning visit sweep`` runs it once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from dunning.clock import Clock
from dunning.compliance.packs import PackSet
from dunning.errors import LedgerError
from dunning.ledger import Ledger
from dunning.ledger.visit_store import OPEN_TASK_STATES, VisitTask
from dunning.visits.teams import choose_team, open_loads

__all__ = ["EXPIRED_REASON", "SweepResult", "assign", "periodic_sweep", "sweep"]

log = structlog.get_logger(__name__)

EXPIRED_REASON = "the visit window closed before anyone visited"


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int
    assigned: int
    waiting: int


def assign(
    ledger: Ledger,
    packs: PackSet,
    task: VisitTask,
    now: datetime,
    loads: Counter[str] | None = None,
) -> VisitTask:
    """Give ``task`` a team if one is eligible now (or record why it waits); the task as it
    stands afterwards. An assigned team whose member is no longer eligible is chosen anew.

    ``loads`` (open tasks per collector) is read from the task's territory when not given;
    a sweep passes its own and it is updated with the team chosen.
    """
    pack = packs.select(task.jurisdiction, now)
    size = pack.visit.min_collectors if pack is not None and pack.visit is not None else 2
    day = task.window_opens_at.astimezone(ZoneInfo(task.timezone)).date()
    collectors = ledger.collectors(territory=task.territory) if task.territory else []
    by_id = {c.collector_id: c for c in collectors}
    if task.team and all(m in by_id and by_id[m].eligible_on(day) for m in task.team):
        return task
    if loads is None:
        others = ledger.visit_tasks(states=OPEN_TASK_STATES, territory=task.territory)
        loads = open_loads([t for t in others if t.task_id != task.task_id])
    else:
        loads.subtract(task.team)  # the team being replaced no longer carries this task
    team, reason = choose_team(
        collectors, territory=task.territory, day=day, size=size, loads=loads
    )
    loads.update(team)
    ledger.set_visit_team(task.task_id, team, reason=reason, now=now)
    log.info("visit.task_team", task_id=task.task_id, team_size=len(team), waiting=not team)
    stored = ledger.visit_task(task.task_id)
    return stored if stored is not None else task


def sweep(ledger: Ledger, packs: PackSet, now: datetime) -> SweepResult:
    """Expire the open tasks whose window has closed, then try to staff the ones that wait."""
    expired = ledger.expire_visit_tasks(now=now, reason=EXPIRED_REASON)
    for task in expired:
        log.info("visit.task_expired", task_id=task.task_id, reason=EXPIRED_REASON)
    assigned = waiting = 0
    open_tasks = ledger.visit_tasks(states=OPEN_TASK_STATES)
    loads = open_loads(open_tasks)
    for task in open_tasks:
        after = assign(ledger, packs, task, now, loads)
        assigned += after.state == "assigned"
        waiting += after.state == "waiting"
    return SweepResult(len(expired), assigned, waiting)


def periodic_sweep(ledger: Ledger, packs: PackSet, clock: Clock) -> Callable[[], Awaitable[None]]:
    """The visit worker's minute job: :func:`sweep` in a ledger thread; a ledger fault is
    logged and tried again next time (a periodic job must not raise)."""

    async def job() -> None:
        try:
            result = await asyncio.to_thread(sweep, ledger, packs, clock.now())
        except LedgerError as exc:
            log.warning("visit.sweep_failed", error=str(exc))
            return
        if result.expired or result.assigned:
            log.info("visit.sweep", expired=result.expired, assigned=result.assigned,
                     waiting=result.waiting)  # fmt: skip

    return job
