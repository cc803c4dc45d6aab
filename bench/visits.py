"""Field tasks per second: the visit adapter (task + team) and a sweep, on one ledger.

Makes ``--tasks`` CN visit intents spread over ``--territories`` territories, each staffed
by ``--collectors-per-territory`` eligible collectors, and sends them through VisitChannel
(template render, task insert, team choice) one after another, as one visit worker does
without the broker and the claim; then times one sweep over every open task (reading the
teams' loads, keeping every team) and one that expires them all. Prints a table.

    .venv/bin/python bench/visits.py --tasks 2000
    .venv/bin/python bench/visits.py --tasks 2000 --database postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

from dunning.clock import ManualClock
from dunning.compliance import load_packs
from dunning.intents import (
    Channel,
    ContactIntent,
    PostalAddress,
    Recipient,
    Stage,
    TemplateRef,
    make_intent_id,
)
from dunning.ledger import Ledger
from dunning.ledger.visit_store import Collector
from dunning.logs import configure_logging
from dunning.visits.channel import VisitChannel
from dunning.visits.sweep import sweep

CONFIG = Path(__file__).resolve().parents[1] / "config"
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


async def run(ledger: Ledger, tasks: int, territories: int, per_territory: int) -> None:
    packs = load_packs(CONFIG / "compliance.toml")
    clock = ManualClock(NOW)
    for t in range(territories):
        for c in range(per_territory):
            ledger.add_collector(Collector(
                f"C-{t}-{c}", "Collector", f"X-{t}-{c}", date(2027, 6, 30), date(2027, 6, 30),
                f"territory-{t}", NOW,
            ))  # fmt: skip
    channel = VisitChannel(ledger, packs, CONFIG / "templates", clock)
    base = ContactIntent(
        intent_id="0" * 32, account_id="B", person_id="P", debt_id="B", jurisdiction="CN",
        stage=Stage.MID, channel=Channel.VISIT, step="mid.visit",
        template=TemplateRef("visit_brief", "zh-CN"), recipient=Recipient(name="张三"),
        timezone="Asia/Shanghai", amount_due=Decimal("3280.00"), currency="CNY",
        days_past_due=45, expires_at=NOW + timedelta(days=2), strategy="bench",
        variant="champion", created_at=NOW, trace_id="bench",
    )  # fmt: skip
    intents = [
        dataclasses.replace(
            base,
            intent_id=make_intent_id(f"B-{i}", "mid.visit", NOW.date()),
            account_id=f"B-{i}",
            person_id=f"P-{i}",
            debt_id=f"B-{i}",
            recipient=dataclasses.replace(
                base.recipient,
                postal_address=PostalAddress(
                    ("浦东新区世纪大道100号",),
                    "上海",
                    "200120",
                    "CN",
                    territory=f"territory-{i % territories}",
                ),
            ),
        )
        for i in range(tasks)
    ]
    started = time.perf_counter()
    for intent in intents:
        await channel.send(intent, attempt=1)
    made_s = time.perf_counter() - started
    started = time.perf_counter()
    kept = sweep(ledger, packs, NOW + timedelta(minutes=1))
    kept_s = time.perf_counter() - started
    started = time.perf_counter()
    expired = sweep(ledger, packs, NOW + timedelta(hours=13))  # 23:00: every window closed
    expired_s = time.perf_counter() - started
    print(f"| tasks made (render + insert + team) | {tasks:,} in {made_s:.1f} s: "
          f"**{tasks / made_s:,.0f} tasks/s** |")  # fmt: skip
    print(f"| sweep over {kept.assigned:,} open tasks (teams kept) | {kept_s:.2f} s |")
    print(f"| sweep expiring {expired.expired:,} tasks | {expired_s:.2f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--territories", type=int, default=20)
    parser.add_argument("--collectors-per-territory", type=int, default=6)
    parser.add_argument("--database", default=None, help="PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    configure_logging("json", "error")
    with tempfile.TemporaryDirectory() as tmp:
        if args.database:
            schema = f"bench_visits_{int(time.time())}"
            admin = create_engine(args.database)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{args.database}?options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        ledger = Ledger.open(url)
        try:
            asyncio.run(run(ledger, args.tasks, args.territories, args.collectors_per_territory))
        finally:
            ledger.close()
            if args.database:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
