"""Field visits: the collectors' section of the console, made for a phone.

A ``collector`` login is linked to one collector (``dunning console user add NAME --role
collector --collector ID``). It sees the tasks of today (the task's local day) whose team it is
on, in visiting order: the window that closes first, then the highest priority; it opens one
(address, local window, the visit brief with what may and may not be said, the rules the report
is checked against) and records what the visit came to. The form goes to
:func:`dunning.visits.record_outcome` with ``source="console"``, so the page checks nothing of
its own; the incidents the report raised are shown with their rule ids.

An admin sees every team's tasks (and their addresses) but records nothing: an outcome is the
word of a collector who was there. Any other task is "not found", whoever asks, so a task id
tells nothing about tasks of other teams. Task ids are intent ids; nothing personal is in a
URL, and the audit log has every view and report with the login's name.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dunning.compliance import load_packs
from dunning.compliance.packs import PackSet
from dunning.console.pages.field_form import FLAGS, US_FLAGS, FormValues, local_day, read_report
from dunning.console.roles import Permission
from dunning.console.sections import Section
from dunning.console.web import SignedIn, action, audit, deps, page, render, signed_in_user
from dunning.ledger.visit_store import VisitTask
from dunning.visits import OUTCOMES, VisitInputError, record_outcome
from dunning.visits.outcomes import CONTACT_ROLES

__all__ = ["may_record", "may_see", "section", "todays_tasks"]

#: Tasks a collector's list shows: those still to visit, then those visited today.
_LISTED_STATES = ("assigned", "visited")
_PACKS: dict[Path, PackSet] = {}


def section() -> Section:
    return Section(
        "Visits",
        "/field",
        Permission.FIELD_VISITS,
        [
            Route("/field", tasks_page, methods=["GET"]),
            Route("/field/tasks/{task_id}", task_page, methods=["GET"]),
            Route("/field/tasks/{task_id}/outcome", record, methods=["POST"]),
        ],
    )


def may_see(user: SignedIn, task: VisitTask) -> bool:
    """A collector sees their team's tasks; a role that sees personal data (admin) sees all."""
    if user.can(Permission.SEE_PII):
        return True
    return user.collector_id is not None and user.collector_id in task.team


def may_record(user: SignedIn, task: VisitTask) -> bool:
    return user.collector_id is not None and user.collector_id in task.team


def todays_tasks(tasks: list[VisitTask], user: SignedIn, now: datetime) -> list[VisitTask]:
    """``user``'s tasks on today's local day, in visiting order (open ones first)."""
    mine = [
        t
        for t in tasks
        if may_see(user, t) and local_day(t) == now.astimezone(ZoneInfo(t.timezone)).date()
    ]
    return sorted(
        mine,
        key=lambda t: (t.state != "assigned", t.window_closes_at, -t.priority, t.task_id),
    )


@page(Permission.FIELD_VISITS)
async def tasks_page(request: Request) -> Response:
    user, console = signed_in_user(request), deps(request)
    found = await run_in_threadpool(console.ledger.visit_tasks, states=_LISTED_STATES)
    tasks = todays_tasks(found, user, console.clock.now())
    audit(request, "field_tasks_viewed", None, collector=user.collector_id, tasks=len(tasks))
    return render(
        request,
        "field_tasks.html",
        tasks=[_view(t) for t in tasks],
        linked=user.collector_id is not None or user.can(Permission.SEE_PII),
    )


@page(Permission.FIELD_VISITS)
async def task_page(request: Request) -> Response:
    user = signed_in_user(request)
    task = await _task(request, user)
    if task is None:
        return render(request, "not_found.html", 404, what="this visit task")
    audit(request, "field_task_viewed", task.task_id, collector=user.collector_id)
    return await _task_response(request, user, task, FormValues.blank(task))


@action(Permission.FIELD_VISITS)
async def record(request: Request, form: FormData) -> Response:
    user, console = signed_in_user(request), deps(request)
    task = await _task(request, user)
    if task is None:
        return render(request, "not_found.html", 404, what="this visit task")
    values = FormValues.of(form)
    if not may_record(user, task):
        return await _task_response(
            request, user, task, values, 403, error="only a collector of the task's team records"
        )
    try:
        report = read_report(task, values)
        packs = _packs(console.settings.config_dir)
        incidents = await run_in_threadpool(
            record_outcome, console.ledger, packs, report, now=console.clock.now()
        )
    except VisitInputError as exc:
        audit(request, "field_outcome_refused", task.task_id, collector=user.collector_id)
        return await _task_response(request, user, task, values, 422, error=str(exc))
    audit(
        request,
        "field_outcome_recorded",
        task.task_id,
        collector=user.collector_id,
        outcome=report.outcome,
        rule_ids=",".join(i.rule_id for i in incidents),
    )
    return render(
        request,
        "field_recorded.html",
        task=_view(task),
        outcome=report.outcome,
        incidents=incidents,
    )


async def _task(request: Request, user: SignedIn) -> VisitTask | None:
    task_id = str(request.path_params["task_id"])
    task = await run_in_threadpool(deps(request).ledger.visit_task, task_id)
    return task if task is not None and may_see(user, task) else None


async def _task_response(
    request: Request,
    user: SignedIn,
    task: VisitTask,
    values: FormValues,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    console = deps(request)
    outcomes = await run_in_threadpool(console.ledger.visit_outcomes, task.task_id)
    pack = _packs(console.settings.config_dir).select(task.jurisdiction, console.clock.now())
    return render(
        request,
        "field_task.html",
        status_code,
        task=_view(task),
        recorded=outcomes[-1] if outcomes else None,
        can_record=may_record(user, task) and task.state == "assigned",
        rules=pack.visit.rules if pack is not None and pack.visit is not None else (),
        values=values,
        outcomes=list(OUTCOMES),
        roles=CONTACT_ROLES,
        flags=FLAGS,
        us_flags=US_FLAGS if task.jurisdiction.startswith("US") else {},
        error=error,
    )


def _view(task: VisitTask) -> dict[str, Any]:
    """The task as the templates show it: its window in local time."""
    zone = ZoneInfo(task.timezone)
    return {
        "task": task,
        "day": local_day(task).isoformat(),
        "opens": task.window_opens_at.astimezone(zone).strftime("%H:%M"),
        "closes": task.window_closes_at.astimezone(zone).strftime("%H:%M"),
    }


def _packs(config_dir: Path) -> PackSet:
    # Loaded once per console: the packs do not change while it runs.
    path = config_dir / "compliance.toml"
    if path not in _PACKS:
        _PACKS[path] = load_packs(path)
    return _PACKS[path]
