"""Recording what a visit came to, checked against the pack's visit rules.

:func:`record_outcome` is the one way in for the command line, the field-service webhook and
the collectors' page. It validates the report (each problem named), checks it against the
rules of the task's pack (``[pack.visit]``: window, team, identification, consent, third
parties, recording, workplace, notices) and stores the outcome with one compliance incident
per broken rule, in one transaction: a report that breaks a rule is stored *and* flagged,
never silently accepted. ``paid`` and ``promise_to_pay`` suppress further contact on the debt
(a promise until its day ends), which the evaluator's ``stop_if`` and the gate read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import structlog

from dunning.clock import utc
from dunning.compliance.packs import PackSet
from dunning.compliance.visit_rules import VisitFacts, check_visit
from dunning.errors import ConfigError
from dunning.ledger import Ledger
from dunning.ledger.visit_store import Incident, VisitReport, VisitTask
from dunning.records import DialOutcome, Suppression

__all__ = ["CONTACT_ROLES", "OUTCOMES", "VisitInputError", "record_outcome"]

log = structlog.get_logger(__name__)

#: Each outcome and what it counts as in the person's contact history (the caps read it).
OUTCOMES: dict[str, DialOutcome] = {
    "met_debtor": DialOutcome.CONVERSATION,
    "promise_to_pay": DialOutcome.CONVERSATION,
    "paid": DialOutcome.CONVERSATION,
    "refused": DialOutcome.CONVERSATION,
    "not_home": DialOutcome.NO_ANSWER,
    "wrong_address": DialOutcome.NO_ANSWER,
    "third_party_only": DialOutcome.NO_ANSWER,
    "aborted_unsafe": DialOutcome.FAILED,
}
#: Who the team may say it spoke to; every role but these is a third party.
CONTACT_ROLES = ("debtor", "spouse", "guardian", "attorney", "relative", "third_party")
_NOT_THIRD_PARTIES = frozenset({"debtor", "spouse", "guardian", "attorney"})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: How far ahead of the recording clock a report may be dated (devices' clocks drift).
_CLOCK_SKEW = timedelta(minutes=5)


class VisitInputError(ConfigError):
    """A visit report is incomplete or contradicts itself; nothing was stored."""


def record_outcome(
    ledger: Ledger, packs: PackSet, report: VisitReport, *, now: datetime
) -> list[Incident]:
    """Check and store ``report``; the incidents it raised (empty: the visit complied).

    Raises VisitInputError, naming the field, for an unknown task or collector, an unknown
    outcome or role, times out of order, a malformed hash, a promise without date or amount,
    or a task that already has an outcome. A report whose ``event_id`` was stored before
    returns the incidents stored then and writes nothing.
    """
    task = ledger.visit_task(report.task_id)
    if task is None:
        raise VisitInputError(f"task_id: no visit task {report.task_id!r}")
    report = _normalised(report)
    _validate(ledger, report, now)
    pack = packs.select(task.jurisdiction, report.arrived_at)
    if pack is None or pack.visit is None:
        raise VisitInputError(f"no [pack.visit] rules for jurisdiction {task.jurisdiction}")
    violations = check_visit(pack.visit, _facts(task, report))
    stored = ledger.record_visit_outcome(
        report,
        [(v.rule_id, v.reason, v.source) for v in violations],
        now=now,
        dial_outcome=OUTCOMES[report.outcome],
        suppressions=_suppressions(task, report, now),
    )
    if stored.settled:
        raise VisitInputError(f"task_id: task {task.task_id} already has an outcome")
    log.info(
        "visit.outcome_recorded", task_id=task.task_id, outcome=report.outcome,
        source=report.source, incidents=len(stored.incidents), duplicate=stored.duplicate,
        rule_ids=",".join(i.rule_id for i in stored.incidents),
    )  # fmt: skip
    return list(stored.incidents)


def _normalised(report: VisitReport) -> VisitReport:
    sha = report.recording_sha256.strip().lower() if report.recording_sha256 else None
    return replace(report, recording_sha256=sha or None)


def _validate(ledger: Ledger, r: VisitReport, now: datetime) -> None:
    problems = []
    if r.outcome not in OUTCOMES:
        problems.append(f"outcome: {r.outcome!r} is not one of {', '.join(OUTCOMES)}")
    if utc(r.departed_at) < utc(r.arrived_at):
        problems.append("departed_at: earlier than arrived_at")
    if utc(r.arrived_at) > utc(now) + _CLOCK_SKEW:
        problems.append("arrived_at: in the future")
    unknown_roles = sorted(set(r.people) - set(CONTACT_ROLES))
    if unknown_roles:
        problems.append(f"people: {', '.join(unknown_roles)} not one of {', '.join(CONTACT_ROLES)}")
    if r.recording_sha256 is not None and not _SHA256.match(r.recording_sha256):
        problems.append("recording_sha256: not 64 hexadecimal digits")
    start, end = r.recording_started_at, r.recording_ended_at
    if start is not None and end is not None and utc(end) < utc(start):
        problems.append("recording_ended_at: earlier than recording_started_at")
    if r.outcome == "promise_to_pay":
        problems += _promise_problems(r)
    if r.entry_consent and not r.entered:
        problems.append("entry_consent: set although the premises were not entered")
    known = {c.collector_id for c in ledger.collectors()}
    strangers = sorted(set(r.collectors) - known)
    if strangers:
        problems.append(f"collectors: unknown collector id(s) {', '.join(strangers)}")
    if len(set(r.collectors)) != len(r.collectors):
        problems.append("collectors: a collector is listed twice")
    if problems:
        raise VisitInputError("; ".join(problems))


def _promise_problems(r: VisitReport) -> list[str]:
    problems = []
    if r.promise_date is None:
        problems.append("promise_date: required for promise_to_pay")
    elif r.promise_date < utc(r.arrived_at).date() - timedelta(days=1):
        problems.append("promise_date: before the visit")
    try:
        amount = Decimal(r.promise_amount or "")
    except InvalidOperation:
        amount = Decimal(0)
    if not amount.is_finite() or amount <= 0:
        problems.append("promise_amount: required for promise_to_pay, a positive decimal")
    return problems


def _facts(task: VisitTask, r: VisitReport) -> VisitFacts:
    detail = r.detail
    return VisitFacts(
        arrived_at=r.arrived_at,
        departed_at=r.departed_at,
        timezone=task.timezone,
        collectors=len(set(r.collectors)),
        id_shown=r.id_shown,
        entered=r.entered,
        entry_consent=r.entry_consent,
        third_party_contacted=any(p not in _NOT_THIRD_PARTIES for p in r.people),
        recording_sha256=r.recording_sha256,
        recording_started_at=r.recording_started_at,
        recording_ended_at=r.recording_ended_at,
        at_workplace=bool(detail.get("at_workplace")),
        employer_prohibits=bool(detail.get("employer_prohibits")),
        notice_mentions_debt=bool(detail.get("notice_mentions_debt")),
    )


def _suppressions(task: VisitTask, r: VisitReport, now: datetime) -> Sequence[Suppression]:
    if r.outcome == "paid":
        return [Suppression(task.person_id, None, "paid", "visit", utc(now), task.debt_id)]
    if r.outcome == "promise_to_pay" and r.promise_date is not None:
        until = _end_of(r.promise_date, task.timezone)
        return [
            Suppression(
                task.person_id, None, "promise_to_pay", "visit", utc(now), task.debt_id, until
            )
        ]
    return []


def _end_of(day: date, zone: str) -> datetime:
    return utc(datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone)))
