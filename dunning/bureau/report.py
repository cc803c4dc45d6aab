"""A cycle's counts: records by status and condition, exclusions by rule, notices still owed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dunning.bureau.export import Exclusion
from dunning.bureau.records import BureauRecord

__all__ = ["CycleReport", "cycle_report"]


@dataclass
class CycleReport:
    cycle: str
    by_status: Counter[str] = field(default_factory=Counter)
    by_condition: Counter[str] = field(default_factory=Counter)
    excluded_by_rule: Counter[str] = field(default_factory=Counter)
    deleted: int = 0
    notices_owed: int = 0  # first-party records furnished before their notice (623(a)(7))

    def as_dict(self) -> dict[str, object]:
        return {
            "cycle": self.cycle,
            "records": sum(self.by_status.values()),
            "by_status": dict(sorted(self.by_status.items())),
            "by_compliance_condition": dict(sorted(self.by_condition.items())),
            "excluded": sum(self.excluded_by_rule.values()),
            "excluded_by_rule": dict(sorted(self.excluded_by_rule.items())),
            "deleted": self.deleted,
            "notices_owed": self.notices_owed,
        }


def cycle_report(
    cycle: str, records: Iterable[BureauRecord], exclusions: Sequence[Exclusion],
    now: datetime,
) -> CycleReport:  # fmt: skip
    """Counts over one cycle; a notice is owed while its ``notice_due_by`` is after ``now``
    and counted as overdue otherwise (both count: either way it has not been logged)."""
    report = CycleReport(cycle)
    for r in records:
        report.by_status[r.status_code] += 1
        if r.compliance_condition:
            report.by_condition[r.compliance_condition] += 1
        if r.delete_reason is not None:
            report.deleted += 1
        if r.notice_due_by is not None:
            report.notices_owed += 1
    for e in exclusions:
        report.excluded_by_rule[e.rule_id] += 1
    return report
