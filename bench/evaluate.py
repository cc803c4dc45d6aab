"""Accounts per second: evaluate a synthetic book and publish its intents to RabbitMQ.

The same path as ``dunning evaluate`` (evaluator, compliance pre-check against the ledger
history, ledger outcomes, IntentPublisher with publisher confirms) over ``synthetic_book``,
published to a RabbitMQ vhost of its own (``dunning-bench-<hex>``, deleted afterwards) with
the ledger in a throw-away PostgreSQL schema (dropped afterwards). ``--no-ledger`` publishes
without ledger, outcomes or pre-check (the evaluator and the broker alone). Prints accounts/s,
intents/s and peak RSS.

    .venv/bin/python bench/evaluate.py --accounts 100000
    .venv/bin/python bench/evaluate.py --accounts 100000 --no-ledger
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from dunning.broker import open_publisher
from dunning.broker.base import Publisher
from dunning.broker.topology import build_topology
from dunning.compliance import ComplianceGate, load_packs
from dunning.ledger import Ledger
from dunning.logs import configure_logging
from dunning.producers.evaluator import EvaluationSummary, evaluate
from dunning.producers.ledger_outcomes import LedgerOutcomes, LedgerPrecheck
from dunning.producers.outcomes import NoOutcomes, OutcomeSource
from dunning.producers.publisher import IntentPublisher
from dunning.producers.strategy import load_strategy
from dunning.producers.synthetic import synthetic_book

CONFIG = Path(__file__).resolve().parents[1] / "config"
RABBITMQ = os.environ.get("DUNNING_BENCH_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672")
POSTGRES = os.environ.get("DUNNING_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1/test")
_HISTORY_DAYS = 8


def _ctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise SystemExit("rabbitmqctl is needed to make the benchmark's own vhost")
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=120)


@contextmanager
def own_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of its own, deleted with its queues afterwards."""
    vhost = f"dunning-bench-{uuid.uuid4().hex[:8]}"
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{RABBITMQ}/{quote(vhost, safe='')}"
    finally:
        _ctl("delete_vhost", vhost)


@contextmanager
def own_schema() -> Iterator[str]:
    """A PostgreSQL URL whose connections live in a throw-away schema."""
    schema = f"dunning_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(accounts: int, broker: Publisher, ledger: Ledger | None, as_of: date) -> dict[str, Any]:
    """Evaluate and publish ``accounts`` synthetic accounts; returns the figures."""
    strategy = load_strategy(CONFIG / "strategy.toml")
    now = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)
    outcomes: OutcomeSource = NoOutcomes()
    precheck: LedgerPrecheck | None = None
    publisher = IntentPublisher(broker)
    if ledger is not None:
        gate = ComplianceGate(load_packs(CONFIG / "compliance.toml"))
        outcomes = LedgerOutcomes(ledger)
        precheck = LedgerPrecheck(gate, ledger, now, since=now - timedelta(days=_HISTORY_DAYS))

        publisher = IntentPublisher(
            broker,
            record=lambda xs: ledger.record_published(xs, now=now),
            mark=lambda ids: ledger.mark_published(ids, now=now),
            suppress=lambda items, debts: ledger.record_account_flags(items, debts, now=now),
            pipelined=True,  # as `dunning evaluate`
        )
    summary = EvaluationSummary()
    book = synthetic_book(accounts, seed=7, as_of=as_of)
    started = time.perf_counter()
    cpu_started = time.process_time()
    for evaluation in evaluate(
        book, strategy, as_of=as_of, now=now, outcomes=outcomes, precheck=precheck
    ):
        summary.add(evaluation)
        account = (evaluation.account.person_id, evaluation.account.account_id)
        publisher.submit(evaluation.intents, evaluation.suppressions, account=account)
    publisher.flush()
    wall_s = time.perf_counter() - started
    return {
        "accounts": summary.accounts,
        "intents": summary.intent_count,
        "published": publisher.published,
        "wall_s": wall_s,
        "cpu_s": time.process_time() - cpu_started,
        "accounts_per_s": summary.accounts / wall_s,
        "intents_per_s": publisher.published / wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--no-ledger", action="store_true", help="broker only: no ledger")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 28))
    args = parser.parse_args()
    configure_logging("console", "warning")
    with own_vhost() as url:
        broker = open_publisher(url, build_topology())
        try:
            if args.no_ledger:
                figures = run(args.accounts, broker, None, args.as_of)
            else:
                with own_schema() as ledger_url:
                    ledger = Ledger.open(ledger_url)
                    try:
                        figures = run(args.accounts, broker, ledger, args.as_of)
                    finally:
                        ledger.close()
        finally:
            broker.close()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    mode = "no ledger" if args.no_ledger else "ledger on PostgreSQL"
    print(
        f"{figures['accounts']:,} accounts -> {figures['intents']:,} intents "
        f"({figures['published']:,} published), {mode}\n"
        f"  wall {figures['wall_s']:.1f} s, CPU {figures['cpu_s']:.1f} s (this process)\n"
        f"  {figures['accounts_per_s']:,.0f} accounts/s, "
        f"{figures['intents_per_s']:,.0f} intents/s\n"
        f"  peak RSS {peak_rss_mb:,.0f} MiB\n"
        f"  machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
