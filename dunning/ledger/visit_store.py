"""Field visits in the ledger: collectors, tasks, outcomes and compliance incidents.

The rules (who may be assigned, what an outcome breaks) live in ``dunning.visits`` and
``dunning.compliance``; this module only stores and reads. Every change to a task writes an
audit record on its intent (``task_id`` is the visit intent's id), so ``dunning intent show``
tells the visit's story beside the claim and the gate decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from dunning.clock import utc
from dunning.intents import Channel
from dunning.ledger import transitions
from dunning.ledger.account_flags import sync_account_flags
from dunning.ledger.core import LedgerCore
from dunning.ledger.queries import NOT_SENT
from dunning.ledger.schema import attempts
from dunning.ledger.visit_schema import (
    collectors,
    compliance_incidents,
    visit_outcomes,
    visit_tasks,
)
from dunning.records import DialOutcome, Suppression

__all__ = [
    "OPEN_TASK_STATES",
    "Collector",
    "Incident",
    "StoredOutcome",
    "VisitReport",
    "VisitStore",
    "VisitTask",
]

#: Tasks a team may still visit; the others (visited, expired) are settled.
OPEN_TASK_STATES = ("waiting", "assigned")


@dataclass(frozen=True, slots=True)
class Collector:
    """A field collector; eligible on a day when neither credential nor training has expired
    (each is valid through its expiry day) and not retired."""

    collector_id: str
    name: str
    credential_no: str
    credential_expires: date
    training_expires: date
    territory: str
    created_at: datetime
    retired_at: datetime | None = None

    def eligible_on(self, day: date) -> bool:
        return (
            self.retired_at is None
            and self.credential_expires >= day
            and self.training_expires >= day
        )


@dataclass(frozen=True, slots=True)
class VisitTask:
    task_id: str
    account_id: str
    person_id: str
    debt_id: str
    jurisdiction: str
    territory: str
    address: str
    latitude: str | None
    longitude: str | None
    timezone: str
    window_opens_at: datetime
    window_closes_at: datetime
    priority: int
    state: str
    reason: str | None
    team: tuple[str, ...]
    brief: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VisitReport:
    """One report of a visit, as the collectors (or their field-service system) gave it."""

    task_id: str
    outcome: str
    arrived_at: datetime
    departed_at: datetime
    collectors: tuple[str, ...]
    id_shown: bool
    entered: bool
    entry_consent: bool
    people: tuple[str, ...]
    recording_sha256: str | None
    recording_started_at: datetime | None
    recording_ended_at: datetime | None
    source: str
    event_id: str | None = None
    promise_date: date | None = None
    promise_amount: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Incident:
    """A rule a visit broke (``source`` is the rule's legal source as the pack states it)."""

    rule_id: str
    reason: str
    source: str
    at: datetime
    task_id: str | None = None
    intent_id: str | None = None
    outcome_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """What :meth:`VisitStore.record_visit_outcome` stored: ``duplicate`` when the event id
    had been stored before (nothing new was written), ``settled`` when the task already had
    another outcome (nothing was written)."""

    outcome_id: int | None
    incidents: tuple[Incident, ...]
    duplicate: bool = False
    settled: bool = False


class VisitStore(LedgerCore):
    """The ledger's field-visit operations (see the module docstring)."""

    # --- collectors ---------------------------------------------------------------------------

    def add_collector(self, collector: Collector) -> bool:
        """Insert ``collector``; False (nothing changed) when the id is taken."""
        with self._tx() as conn:
            taken = conn.scalar(
                select(collectors.c.collector_id).where(
                    collectors.c.collector_id == collector.collector_id
                )
            )
            if taken is not None:
                return False
            values = {f: getattr(collector, f) for f in Collector.__dataclass_fields__}
            conn.execute(insert(collectors).values(**values))
            return True

    def retire_collector(self, collector_id: str, *, now: datetime) -> bool:
        """Retire an active collector (never assigned again); False when unknown or retired."""
        with self._tx() as conn:
            moved = conn.execute(
                update(collectors)
                .where(collectors.c.collector_id == collector_id, collectors.c.retired_at.is_(None))
                .values(retired_at=utc(now))
            ).rowcount
        return bool(moved)

    def collectors(self, *, territory: str | None = None) -> list[Collector]:
        query = select(collectors).order_by(collectors.c.territory, collectors.c.collector_id)
        if territory is not None:
            query = query.where(collectors.c.territory == territory)
        with self._tx(read=True) as conn:
            return [_collector(row) for row in conn.execute(query)]

    # --- tasks --------------------------------------------------------------------------------

    def create_visit_task(self, task: VisitTask) -> tuple[VisitTask, bool]:
        """Insert ``task`` unless its intent already has one; (the stored task, created)."""
        with self._tx() as conn:
            stored = _read_task(conn, task.task_id)
            if stored is not None:
                return stored, False
            values = {f: getattr(task, f) for f in VisitTask.__dataclass_fields__}
            values["team"] = json.dumps(list(task.team))
            conn.execute(insert(visit_tasks).values(**values))
            transitions.write_audit(
                conn, task.task_id, "visit_task_created", utc(task.created_at),
                detail={"territory": task.territory, "priority": task.priority,
                        "window_opens_at": task.window_opens_at.isoformat(),
                        "window_closes_at": task.window_closes_at.isoformat()},
            )  # fmt: skip
            return task, True

    def visit_task(self, task_id: str) -> VisitTask | None:
        with self._tx(read=True) as conn:
            return _read_task(conn, task_id)

    def visit_tasks(
        self, *, states: Sequence[str] | None = None, territory: str | None = None
    ) -> list[VisitTask]:
        """Tasks by priority (highest first), then by when their window closes."""
        query = select(visit_tasks).order_by(
            visit_tasks.c.priority.desc(), visit_tasks.c.window_closes_at, visit_tasks.c.task_id
        )
        if states is not None:
            query = query.where(visit_tasks.c.state.in_(list(states)))
        if territory is not None:
            query = query.where(visit_tasks.c.territory == territory)
        with self._tx(read=True) as conn:
            return [_task(row) for row in conn.execute(query)]

    def set_visit_team(
        self, task_id: str, team: Sequence[str], *, reason: str | None, now: datetime
    ) -> bool:
        """Assign ``team`` to an open task (an empty team: it waits, for ``reason``).

        Returns False, changing nothing, when the task is settled or already stands so; the
        audit records each change once.
        """
        state = "assigned" if team else "waiting"
        with self._tx() as conn:
            current = _read_task(conn, task_id)
            if current is None or current.state not in OPEN_TASK_STATES:
                return False
            if (current.state, current.team, current.reason) == (state, tuple(team), reason):
                return False
            conn.execute(
                update(visit_tasks)
                .where(visit_tasks.c.task_id == task_id)
                .values(state=state, team=json.dumps(list(team)), reason=reason,
                        updated_at=utc(now))
            )  # fmt: skip
            detail: dict[str, Any] = {"team": ",".join(team)} if team else {"reason": reason}
            transitions.write_audit(conn, task_id, f"visit_{state}", utc(now), detail=detail)
            return True

    def expire_visit_tasks(self, *, now: datetime, reason: str) -> list[VisitTask]:
        """Settle as expired every open task whose window closed at or before ``now``; their
        visit attempts become ``not_sent`` (no one was contacted, the caps do not count them)."""
        now = utc(now)
        with self._tx() as conn:
            due = [
                _task(row)
                for row in conn.execute(
                    select(visit_tasks).where(
                        visit_tasks.c.state.in_(OPEN_TASK_STATES),
                        visit_tasks.c.window_closes_at <= now,
                    )
                )
            ]
            for task in due:
                conn.execute(
                    update(visit_tasks)
                    .where(visit_tasks.c.task_id == task.task_id)
                    .values(state="expired", reason=reason, updated_at=now)
                )
                # Nobody was visited: the attempt no longer counts in the person's history, so
                # the 7-day visit cap does not hold back the next visit for one never made.
                conn.execute(
                    update(attempts)
                    .where(attempts.c.intent_id == task.task_id,
                           attempts.c.channel == Channel.VISIT)
                    .values(outcome=NOT_SENT, reason=reason)
                )  # fmt: skip
                transitions.write_audit(
                    conn, task.task_id, "visit_expired", now,
                    detail={"reason": reason,
                            "window_closes_at": task.window_closes_at.isoformat()},
                )  # fmt: skip
        return due

    # --- outcomes and incidents ---------------------------------------------------------------

    def record_visit_outcome(
        self,
        report: VisitReport,
        incidents: Iterable[tuple[str, str, str]],
        *,
        now: datetime,
        dial_outcome: DialOutcome,
        suppressions: Iterable[Suppression] = (),
    ) -> StoredOutcome:
        """Store ``report``, its ``incidents`` (rule id, reason, source) and what it implies,
        in one transaction.

        The task becomes ``visited``; the visit attempt gets ``dial_outcome`` (the caps count
        a conversation at the door); ``suppressions`` (paid, a promise to pay) are added. A
        report whose ``event_id`` was stored before is a duplicate and changes nothing.
        """
        now = utc(now)
        broken = list(incidents)
        known = self.visit_task(report.task_id)
        # The person's lock, as the claim takes it: a claim in flight sees the suppressions.
        with self._tx(known.person_id if known is not None else None) as conn:
            if report.event_id is not None:
                seen = conn.scalar(
                    select(visit_outcomes.c.id).where(visit_outcomes.c.event_id == report.event_id)
                )
                if seen is not None:
                    return StoredOutcome(seen, tuple(_incidents_of(conn, seen)), duplicate=True)
            task = _read_task(conn, report.task_id)
            if task is None or task.state == "visited":
                return StoredOutcome(None, (), settled=task is not None)
            outcome_id = _insert_outcome(conn, report, now)
            transitions.write_audit(
                conn, task.task_id, "visit_outcome", now,
                detail={"outcome": report.outcome, "source": report.source,
                        "collectors": len(report.collectors),
                        "recording": (report.recording_sha256 or "none")[:12],
                        "incidents": len(broken)},
            )  # fmt: skip
            stored = []
            for rule_id, reason, source in broken:
                incident = Incident(rule_id, reason, source, now, task.task_id, task.task_id,
                                    outcome_id)  # fmt: skip
                conn.execute(insert(compliance_incidents).values(**_incident_values(incident)))
                transitions.write_audit(
                    conn, task.task_id, "compliance_incident", now, rule_id=rule_id,
                    detail={"reason": reason, "source": source},
                )  # fmt: skip
                stored.append(incident)
            conn.execute(
                update(visit_tasks)
                .where(visit_tasks.c.task_id == task.task_id)
                .values(state="visited", reason=None, updated_at=now)
            )
            conn.execute(
                update(attempts)
                .where(attempts.c.intent_id == task.task_id, attempts.c.channel == Channel.VISIT)
                .values(dial_outcome=dial_outcome.value)
            )
            sync_account_flags(conn, list(suppressions), (), now=None)
            return StoredOutcome(outcome_id, tuple(stored))

    def visit_outcomes(self, task_id: str) -> list[dict[str, Any]]:
        """The stored reports of one task, oldest first, as plain values."""
        query = select(visit_outcomes).where(visit_outcomes.c.task_id == task_id)
        with self._tx(read=True) as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(visit_outcomes.c.id))]

    def incidents(self, *, since: datetime, until: datetime) -> list[Incident]:
        """Compliance incidents recorded in ``[since, until)``, oldest first."""
        query = (
            select(compliance_incidents)
            .where(compliance_incidents.c.at >= utc(since), compliance_incidents.c.at < utc(until))
            .order_by(compliance_incidents.c.at, compliance_incidents.c.id)
        )
        with self._tx(read=True) as conn:
            return [_incident(row) for row in conn.execute(query)]


def _insert_outcome(conn: Connection, report: VisitReport, now: datetime) -> int:
    values = {f: getattr(report, f) for f in VisitReport.__dataclass_fields__}
    values["collectors"] = json.dumps(list(report.collectors))
    values["people"] = json.dumps(list(report.people))
    values["detail"] = json.dumps(dict(report.detail), sort_keys=True)
    values["recorded_at"] = now
    result = conn.execute(insert(visit_outcomes).values(**values))
    key = result.inserted_primary_key
    assert key is not None  # an insert into a table with an integer primary key
    return int(key[0])


def _incident_values(incident: Incident) -> dict[str, Any]:
    return {f: getattr(incident, f) for f in Incident.__dataclass_fields__}


def _incidents_of(conn: Connection, outcome_id: int) -> list[Incident]:
    query = select(compliance_incidents).where(compliance_incidents.c.outcome_id == outcome_id)
    return [_incident(row) for row in conn.execute(query.order_by(compliance_incidents.c.id))]


def _incident(row: Row[Any]) -> Incident:
    m = row._mapping
    return Incident(m["rule_id"], m["reason"], m["source"], m["at"], m["task_id"],
                    m["intent_id"], m["outcome_id"])  # fmt: skip


def _read_task(conn: Connection, task_id: str) -> VisitTask | None:
    row = conn.execute(select(visit_tasks).where(visit_tasks.c.task_id == task_id)).first()
    return None if row is None else _task(row)


def _task(row: Row[Any]) -> VisitTask:
    values = dict(row._mapping)
    values["team"] = tuple(json.loads(values["team"]))
    return VisitTask(**values)


def _collector(row: Row[Any]) -> Collector:
    return Collector(**dict(row._mapping))
