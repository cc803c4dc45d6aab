"""Roll rates and a bureau cycle's counts as the Reports page shows them: the same numbers as
`dunning report rolls` and `dunning report bureau`, computed by the same functions
(:func:`dunning.producers.rolls.roll_matrices`, :func:`dunning.bureau.report.cycle_report`).

The parameters come from the page's query string; a value that cannot be read is an error
naming the field, and the page shows the clock's defaults instead (rolls: the 30 days up to
today; bureau: this month's cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from dunning.bureau.export import Exclusion, check_cycle
from dunning.bureau.records import record_from_row
from dunning.bureau.report import cycle_report
from dunning.console.web import ConsoleDeps
from dunning.producers.rolls import BUCKETS, RollMatrix, roll_matrices

__all__ = ["ROLL_GROUPS", "ReportParams", "Table", "bureau_tables", "read_params", "roll_tables"]

#: The ``by`` choices of the roll matrix: none, or one matrix per segment or variant.
ROLL_GROUPS = ("", "segment", "variant")
#: The roll matrix compares today with this many days before, unless the page says otherwise.
ROLL_SPAN_D = 30


@dataclass(frozen=True)
class Table:
    title: str
    rows: list[dict[str, Any]]
    note: str = ""


@dataclass
class ReportParams:
    """What the Reports page was asked for, with the clock's defaults for what was not."""

    roll_from: date
    roll_to: date
    roll_by: str
    cycle: str
    errors: list[str] = field(default_factory=list)


def read_params(query: Mapping[str, str], today: date) -> ReportParams:
    """The page's parameters from ``query``; each bad one is named in ``errors`` and replaced
    by its default."""
    params = ReportParams(today - timedelta(days=ROLL_SPAN_D), today, "", today.strftime("%Y-%m"))
    for name in ("from", "to"):
        value = query.get(name, "").strip()
        if not value:
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            params.errors.append(f"roll rates {name}: {value!r} is not a day (YYYY-MM-DD)")
            continue
        if name == "from":
            params.roll_from = day
        else:
            params.roll_to = day
    if params.roll_to < params.roll_from:
        params.errors.append(
            f"roll rates: to {params.roll_to} is before from {params.roll_from}; "
            "showing the last 30 days"
        )
        params.roll_from, params.roll_to = today - timedelta(days=ROLL_SPAN_D), today
    by = query.get("by", "")
    if by in ROLL_GROUPS:
        params.roll_by = by
    else:
        params.errors.append(f"roll rates by: {by!r} is not one of segment, variant")
    cycle = query.get("cycle", "").strip()
    if cycle:
        try:
            params.cycle = check_cycle(cycle)
        except ValueError as exc:
            params.errors.append(f"bureau cycle: {exc}")
    return params


def roll_tables(console: ConsoleDeps, params: ReportParams) -> list[Table]:
    """One table per matrix (per segment or variant when grouped), cells ``count (share)``."""
    start = console.ledger.buckets_on(params.roll_from)
    end = console.ledger.buckets_on(params.roll_to)
    matrices, missing = roll_matrices(start, end, by=params.roll_by or None)
    span = f"{params.roll_from} → {params.roll_to}"
    note = f"{missing:,} accounts of {params.roll_from} not on the end day"
    if not matrices:
        return [Table(f"Roll rates {span}", [], f"No account recorded on both days. {note}")]
    return [
        Table(
            f"Roll rates {span}" + (f", {params.roll_by} {group}" if params.roll_by else ""),
            _matrix_rows(matrix),
            note,
        )
        for group, matrix in matrices.items()
    ]


def _matrix_rows(matrix: RollMatrix) -> list[dict[str, Any]]:
    rows = []
    for start in BUCKETS:
        total = matrix.row_total(start)
        if total == 0:
            continue
        row: dict[str, Any] = {"from \\ to": start}
        for end in BUCKETS:
            count = matrix.counts.get((start, end), 0)
            share = matrix.share(start, end) or 0.0
            row[end] = f"{count:,} ({share:.1%})" if count else "-"
        row["accounts"] = f"{total:,}"
        rows.append(row)
    return rows


def bureau_tables(console: ConsoleDeps, cycle: str) -> list[Table]:
    """The cycle's counts: records by status and compliance condition, exclusions by rule id,
    deletions and notices owed (one table, as `dunning report bureau` prints it)."""
    records = (record_from_row(row) for row in console.ledger.cycle_rows(cycle))
    exclusions = [Exclusion(*row) for row in console.ledger.cycle_exclusions(cycle)]
    report = cycle_report(cycle, records, exclusions, console.clock.now())
    rows = [
        *({"what": "status", "key": k, "count": n} for k, n in report.by_status.most_common()),
        *(
            {"what": "compliance condition", "key": k, "count": n}
            for k, n in report.by_condition.most_common()
        ),
        *(
            {"what": "excluded", "key": k, "count": n}
            for k, n in report.excluded_by_rule.most_common()
        ),
    ]
    if not rows:
        return [Table(f"Bureau cycle {cycle}", [], "No record and no exclusion in this cycle.")]
    rows += [
        {"what": "deleted", "key": "", "count": report.deleted},
        {"what": "notices owed", "key": "", "count": report.notices_owed},
    ]
    records_n = sum(report.by_status.values())
    excluded_n = sum(report.excluded_by_rule.values())
    note = f"{records_n:,} records furnished, {excluded_n:,} accounts excluded"
    return [Table(f"Bureau cycle {cycle}", rows, note)]
