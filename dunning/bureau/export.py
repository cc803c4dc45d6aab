"""``dunning bureau export``: one cycle's file and its manifest, byte for byte reproducible.

Records stream from the ledger in account order straight into the file (memory does not grow
with the book); the file is written under a temporary name and renamed when complete, then
hashed. Nothing in either file depends on when the export ran: the Metro 2 header is dated the
cycle's last day and each record carries the instant it was furnished, so exporting a cycle
twice gives the same bytes.

Which records go in: Metro 2 takes the US jurisdictions (``US``, ``US-*``), the CN CSV takes
``CN`` (:data:`JURISDICTION`; the caller may read only those rows, records of others are
skipped anyway). The manifest lists the accounts the gate kept out of the cycle with their
rule id, and for the CN CSV the accounts deleted from reporting (a deletion is its own PBOC
request).
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from dunning.bureau.cn_csv import CnCsvWriter
from dunning.bureau.metro2 import Furnisher, Metro2Writer
from dunning.bureau.records import BureauRecord

__all__ = [
    "FORMATS", "JURISDICTION", "Exclusion", "ExportResult", "check_cycle", "export_cycle",
    "in_format",
]  # fmt: skip

Format = Literal["metro2", "cn-csv"]
FORMATS: tuple[Format, ...] = ("metro2", "cn-csv")
#: The jurisdiction (with its subdivisions) each format reports.
JURISDICTION: dict[str, str] = {"metro2": "US", "cn-csv": "CN"}


@dataclass(frozen=True, slots=True)
class Exclusion:
    account_id: str
    jurisdiction: str
    rule_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExportResult:
    file: Path
    manifest: Path
    manifest_data: dict[str, Any]


def check_cycle(cycle: str) -> str:
    """``cycle`` if it is a YYYY-MM month; ValueError otherwise."""
    try:
        year, month = (int(part) for part in cycle.split("-"))
    except ValueError:
        raise ValueError(f"cycle {cycle!r} is not YYYY-MM") from None
    if len(cycle) != 7 or not 1 <= month <= 12 or year < 1900:
        raise ValueError(f"cycle {cycle!r} is not YYYY-MM")
    return cycle


def _last_day(cycle: str) -> date:
    year, month = (int(part) for part in cycle.split("-"))
    return date(year, month, calendar.monthrange(year, month)[1])


def in_format(fmt: Format, jurisdiction: str) -> bool:
    """Whether an account of ``jurisdiction`` is reported in ``fmt``."""
    wanted = JURISDICTION[fmt]
    return jurisdiction == wanted or jurisdiction.startswith(f"{wanted}-")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def export_cycle(
    records: Iterable[BureauRecord],
    exclusions: Sequence[Exclusion],
    *,
    cycle: str,
    fmt: Format,
    out_dir: Path,
    furnisher: Furnisher,
) -> ExportResult:
    """Write ``cycle``'s file and manifest into ``out_dir``; ``records`` in account order."""
    check_cycle(cycle)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"metro2-{cycle}.txt" if fmt == "metro2" else f"cn-{cycle}.csv"
    target = out_dir / name
    partial = out_dir / f".{name}.partial"
    statuses: Counter[str] = Counter()
    deleted: list[dict[str, str]] = []
    k1 = 0
    with partial.open("w", encoding="ascii" if fmt == "metro2" else "utf-8", newline="") as out:
        if fmt == "metro2":
            writer = Metro2Writer(out, furnisher, cycle)
            writer.begin(_last_day(cycle))
            for record in records:
                if in_format(fmt, record.jurisdiction):
                    writer.add(record)
            writer.end()
            statuses, k1 = writer.statuses, writer.k1
        else:
            csv_writer = CnCsvWriter(out)
            for record in records:
                if not in_format(fmt, record.jurisdiction):
                    continue
                if record.delete_reason is not None:
                    deleted.append({"account_id": record.account_id,
                                    "reason": record.delete_reason})  # fmt: skip
                    continue
                csv_writer.add(record)
                statuses[record.status_code] += 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)
    manifest: dict[str, Any] = {
        "schema": "dunning.bureau-manifest/1",
        "cycle": cycle,
        "format": fmt,
        "file": name,
        "sha256": _sha256(target),
        "bytes": target.stat().st_size,
        "records": sum(statuses.values()),
        "by_status": dict(sorted(statuses.items())),
        "original_creditor_segments": k1,
        "excluded": [
            {"account_id": e.account_id, "rule_id": e.rule_id, "reason": e.reason}
            for e in exclusions
            if in_format(fmt, e.jurisdiction)
        ],
        "deleted": deleted,
    }
    manifest_path = out_dir / f"manifest-{cycle}-{fmt}.json"
    manifest_path.write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8"
    )
    return ExportResult(target, manifest_path, manifest)
