"""A roster of collectors as a CSV file: ``dunning collectors import`` and the demo read it.

Columns: ``collector_id,name,credential_no,credential_expires,training_expires,territory``
(dates as ``YYYY-MM-DD``, each the last day it is valid). Every bad row is reported with its
line number and column, and nothing is imported from a file with a bad row.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

from dunning.ledger.visit_store import Collector
from dunning.visits.outcomes import VisitInputError

__all__ = ["ROSTER_COLUMNS", "read_roster"]

ROSTER_COLUMNS = (
    "collector_id", "name", "credential_no", "credential_expires", "training_expires",
    "territory",
)  # fmt: skip
_WIDTH = {"collector_id": 64, "name": 200, "credential_no": 64, "territory": 64}


def read_roster(path: Path, *, now: datetime) -> list[Collector]:
    """The collectors in ``path``; raises VisitInputError naming every bad line and column."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ROSTER_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise VisitInputError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError) as exc:
        raise VisitInputError(f"{path}: cannot read it: {exc}") from None
    problems: list[str] = []
    found: list[Collector] = []
    seen: set[str] = set()
    for line, row in rows:
        wrong = _row_problems(row, seen)
        if wrong:
            problems += [f"{path} line {line}: {w}" for w in wrong]
            continue
        seen.add(row["collector_id"].strip())
        found.append(
            Collector(
                collector_id=row["collector_id"].strip(), name=row["name"].strip(),
                credential_no=row["credential_no"].strip(),
                credential_expires=date.fromisoformat(row["credential_expires"].strip()),
                training_expires=date.fromisoformat(row["training_expires"].strip()),
                territory=row["territory"].strip(), created_at=now,
            )
        )  # fmt: skip
    if problems:
        raise VisitInputError("; ".join(problems))
    return found


def _row_problems(row: dict[str, str], seen: set[str]) -> list[str]:
    problems = []
    for column, width in _WIDTH.items():
        value = (row.get(column) or "").strip()
        if not value or len(value) > width:
            problems.append(f"{column}: required, at most {width} characters")
    for column in ("credential_expires", "training_expires"):
        try:
            date.fromisoformat((row.get(column) or "").strip())
        except ValueError:
            problems.append(f"{column}: not a date like 2027-06-30")
    if (row.get("collector_id") or "").strip() in seen:
        problems.append("collector_id: listed twice")
    return problems
