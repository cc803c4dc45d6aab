"""The collectors' outcome form: its fields read into a :class:`VisitReport`.

Times are typed as local clock times (``HH:MM`` or ``HH:MM:SS``) on the task's local visit
day, in the task's time zone, as a collector reads them off a watch; the ledger keeps UTC.
Only what a form cannot say (a missing time, a malformed date) is refused here, each field
named; every rule a report may break is :func:`dunning.visits.record_outcome`'s to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from dunning.ledger.visit_store import VisitReport, VisitTask
from dunning.visits import VisitInputError

__all__ = ["FLAGS", "US_FLAGS", "FormValues", "local_day", "read_report"]

#: Yes/no questions every report answers (unticked: no).
FLAGS = {
    "id_shown": "Identification and authorisation shown",
    "entered": "Premises entered",
    "entry_consent": "Entered with the occupant's consent",
}
#: The US rules' questions (workplace, notes), asked on tasks of a US jurisdiction.
US_FLAGS = {
    "at_workplace": "The visit was at a workplace",
    "employer_prohibits": "The employer prohibits such visits",
    "notice_mentions_debt": "A note or door-hanger mentioned the debt",
}
_TIMES = ("arrived", "departed", "recording_started", "recording_ended")


@dataclass(frozen=True)
class FormValues:
    """What the collector typed, to show the form again unchanged when it is refused."""

    fields: dict[str, str]
    collectors: tuple[str, ...]
    people: tuple[str, ...]
    ticked: frozenset[str]

    @classmethod
    def blank(cls, task: VisitTask) -> FormValues:
        # The whole team is on site unless the collector says otherwise.
        return cls({}, task.team, (), frozenset())

    @classmethod
    def of(cls, form: FormData) -> FormValues:
        texts = {k: v.strip() for k, v in form.multi_items() if isinstance(v, str)}
        return cls(
            texts,
            tuple(_all(form, "collector")),
            tuple(_all(form, "person")),
            frozenset(k for k in (*FLAGS, *US_FLAGS) if k in texts),
        )

    def get(self, key: str) -> str:
        return self.fields.get(key, "")


def local_day(task: VisitTask) -> date:
    """The local day the task's window is on."""
    return task.window_opens_at.astimezone(ZoneInfo(task.timezone)).date()


def read_report(task: VisitTask, values: FormValues) -> VisitReport:
    """The report the form describes; VisitInputError naming every field it cannot read."""
    problems: list[str] = []
    day, zone = local_day(task), ZoneInfo(task.timezone)
    at: dict[str, datetime | None] = {}
    for key in _TIMES:
        at[key] = _local_time(values.get(key), key, day, zone, problems)
    for key in ("arrived", "departed"):
        if at[key] is None and not any(p.startswith(key) for p in problems):
            problems.append(f"{key}: required, a local time like 10:05")
    promise_date = None
    if values.get("promise_date"):
        try:
            promise_date = date.fromisoformat(values.get("promise_date"))
        except ValueError:
            problems.append("promise_date: not a date like 2026-12-05")
    if not values.get("outcome"):
        problems.append("outcome: choose one")
    if problems:
        raise VisitInputError("; ".join(problems))
    arrived, departed = at["arrived"], at["departed"]
    assert arrived is not None
    assert departed is not None
    detail: dict[str, Any] = {k: True for k in US_FLAGS if k in values.ticked}
    return VisitReport(
        task_id=task.task_id,
        outcome=values.get("outcome"),
        arrived_at=arrived,
        departed_at=departed,
        collectors=values.collectors,
        id_shown="id_shown" in values.ticked,
        entered="entered" in values.ticked,
        entry_consent="entry_consent" in values.ticked,
        people=values.people,
        recording_sha256=values.get("recording_sha256") or None,
        recording_started_at=at["recording_started"],
        recording_ended_at=at["recording_ended"],
        source="console",
        promise_date=promise_date,
        promise_amount=values.get("promise_amount") or None,
        detail=detail,
    )


def _local_time(
    raw: str, key: str, day: date, zone: ZoneInfo, problems: list[str]
) -> datetime | None:
    if not raw:
        return None
    try:
        clock = time.fromisoformat(raw)
    except ValueError:
        problems.append(f"{key}: {raw!r} is not a local time like 10:05")
        return None
    return datetime.combine(day, clock, tzinfo=zone)


def _all(form: FormData, key: str) -> list[str]:
    return [v.strip() for v in form.getlist(key) if isinstance(v, str) and v.strip()]
