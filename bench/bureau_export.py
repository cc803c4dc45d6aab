"""A reporting cycle's export: N accounts from the ledger to a Metro 2 file and a CN CSV.

Seeds a fresh ledger (SQLite in a temporary folder by default, or the empty database that
``--database`` names) with N US and N CN ``bureau_records`` rows for one cycle,
then times ``export_cycle`` as ``dunning bureau export`` runs it: rows streamed in account order
from the ledger, records rebuilt, the file written and hashed, the manifest written. Memory is
the tracemalloc peak during the export, for a tenth of the book and for the whole of it: equal
figures mean the export's memory does not grow with the book. Prints JSON lines.

    .venv/bin/python bench/bureau_export.py --accounts 100000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from dunning.account_facts import AccountFacts
from dunning.bureau.export import JURISDICTION, Exclusion, export_cycle
from dunning.bureau.metro2 import Furnisher
from dunning.bureau.records import BureauRecord, build_record, record_from_row
from dunning.intents import Channel, ContactIntent, PostalAddress, Recipient, Stage, TemplateRef
from dunning.ledger import Ledger

CYCLE = "2026-11"
FURNISHED = datetime(2026, 11, 16, 14, 0, tzinfo=UTC)
US = PostalAddress(("12 Elm Street",), "Boston", "02108", "US", region="MA")
CN = PostalAddress(("浦东新区世纪大道100号",), "上海", "200120", "CN", region="上海市")


def template_record(jurisdiction: str, third_party: bool) -> BureauRecord:
    role = "third_party" if third_party else "first_party"
    facts = AccountFacts(
        role, "collection" if third_party else "installment", Decimal("5000.00"),
        date(2026, 7, 1), date_opened=date(2025, 1, 5), terms="24",
        original_creditor="Acme Bank" if third_party else None,
    )  # fmt: skip
    intent = ContactIntent(
        intent_id="0" * 32, account_id="template", person_id="template", debt_id="template",
        jurisdiction=jurisdiction, stage=Stage.LATE, channel=Channel.BUREAU, step="late.bureau",
        template=TemplateRef("credit_bureau_report", "en-US"),
        recipient=Recipient("Jane Doe" if jurisdiction == "US" else "张三",
                            postal_address=US if jurisdiction == "US" else CN),
        timezone="America/New_York" if jurisdiction == "US" else "Asia/Shanghai",
        amount_due=Decimal("2345.67"), currency="USD" if jurisdiction == "US" else "CNY",
        days_past_due=138, expires_at=FURNISHED, strategy="bench", variant="bench",
        created_at=FURNISHED, trace_id="bench", facts=facts,
    )  # fmt: skip
    return build_record(intent, [], compliance_condition="", notice_due_by=None,
                        furnished_at=FURNISHED)  # fmt: skip


def rows(count: int) -> Iterator[dict[str, Any]]:
    """``count`` US accounts and ``count`` CN accounts, a third of each third-party."""
    templates = [template_record(j, t) for j in ("US", "CN") for t in (False, False, True)]
    for n in range(2 * count):
        row = templates[(n % 2) * 3 + n // 2 % 3].to_row()
        row["account_id"] = f"ACCT{n:09d}"
        row["person_id"] = f"P{n:09d}"
        row["intent_id"] = f"{n:032x}"
        yield row


def seed(ledger: Ledger, count: int, batch: int = 5000) -> float:
    started = time.perf_counter()
    chunk: list[dict[str, Any]] = []
    for row in rows(count):
        chunk.append(row)
        if len(chunk) == batch:
            ledger.write_bureau_records(chunk)
            chunk = []
    ledger.write_bureau_records(chunk)
    return time.perf_counter() - started


def export(ledger: Ledger, fmt: str, out: Path, limit: int | None) -> dict[str, Any]:
    def records() -> Iterator[BureauRecord]:
        for n, row in enumerate(ledger.cycle_rows(CYCLE, jurisdiction=JURISDICTION[fmt])):
            if limit is not None and n >= limit:
                return
            yield record_from_row(row)

    traced = limit is not None  # tracemalloc slows Python: the timed run goes without it
    if traced:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    exclusions = [Exclusion(*row) for row in ledger.cycle_exclusions(CYCLE)]
    result = export_cycle(records(), exclusions, cycle=CYCLE, fmt=fmt,  # type: ignore[arg-type]
                          out_dir=out, furnisher=Furnisher("BENCH", "BENCH"))  # fmt: skip
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "format": fmt, "accounts_read": limit or "all", "records": result.manifest_data["records"],
        "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
        "bytes": result.manifest_data["bytes"],
        "peak_traced_mib": round(peak / 2**20, 2) if traced else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--database", default=None, help="ledger URL (default: temporary SQLite)")
    parser.add_argument(
        "--no-memory", action="store_true", help="only the timed runs (no tracemalloc runs)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        ledger = Ledger.open(url)
        try:
            seconds = seed(ledger, args.accounts)
            print(json.dumps({"seeded": args.accounts, "seconds": round(seconds, 2)}))
            for fmt in ("metro2", "cn-csv"):
                # memory (traced) for a tenth and for all of the book, then the timed run
                traced = () if args.no_memory else (args.accounts // 10, args.accounts)
                for limit in (*traced, None):
                    print(json.dumps(export(ledger, fmt, Path(tmp) / "out", limit)))
        finally:
            ledger.close()


if __name__ == "__main__":
    main()
