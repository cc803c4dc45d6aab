"""The Celery baseline: the same SMS job as a Celery task (see celery_app.py), same RabbitMQ,
same stand-in, same PostgreSQL, same message count. Needs ``pip install 'dunning[bench]'``.

Starts the stand-in and ``celery worker`` (prefork, ``--concurrency`` processes), publishes
``--count`` tasks as fast as Celery publishes them, and waits until every send is recorded.
Throughput = sends / (last send - first publish); latency = recorded send - intent created_at.

    .venv/bin/python bench/celery_baseline.py --count 5000 --concurrency 2

``--twilio-api-base`` uses a stand-in already running (``bench/side_by_side.py`` shares one
between all its rows); the last line printed is the result, and with ``--phases`` a line
``{"phase": "publishing"}`` comes before the first publish and ``{"phase": "done"}`` after the
last send is recorded, so a caller can measure CPU over exactly that span. Duplicates are
creates the stand-in recorded more than once for one of this run's intents.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from dunning.intents import encode_intent
from dunning.loadtest.generator import IntentMix, SyntheticIntents
from dunning.loadtest.metrics import percentile
from dunning.loadtest.processes import (
    ChildProcess,
    child_env,
    fetch_creates,
    script_standin,
    start_standin,
)

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
#: The task's connections carry this name, so their backends can be told apart.
TASK_DSN = PG_DSN + "?application_name=sbs-celery"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pool", default="prefork", help="prefork or threads")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--twilio-api-base", help="a running stand-in (default: start one)")
    parser.add_argument("--phases", action="store_true", help="print the phase lines")
    args = parser.parse_args()
    db = psycopg.connect(PG_DSN, autocommit=True)
    db.execute(
        "CREATE TABLE IF NOT EXISTS bench_celery_sends (intent_id text PRIMARY KEY, "
        "created_at timestamptz NOT NULL, sent_at timestamptz NOT NULL, sid text NOT NULL)"
    )
    db.execute("TRUNCATE bench_celery_sends")
    with tempfile.TemporaryDirectory() as tmp:
        standin = None
        base_url = args.twilio_api_base
        if base_url is None:
            standin, base_url = start_standin(child_env({}), Path(tmp))
            script_standin(base_url, {"drop_callback_rate": 1.0})
        env = child_env(
            {
                "BENCH_TWILIO_API_BASE": base_url,
                "BENCH_PG_DSN": TASK_DSN,
                "BENCH_BROKER_URL": BROKER,
            }
        )
        worker = ChildProcess(
            "celery",
            [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker",
             "--pool", args.pool, "--concurrency", str(args.concurrency), "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env, Path(tmp) / "celery.log",
        )  # fmt: skip
        try:
            sys.path.insert(0, str(Path(__file__).parents[1]))
            from bench.celery_app import send_sms

            _wait_for_consumer(worker)
            source = SyntheticIntents(IntentMix())
            ids: list[str] = []
            if args.phases:
                print(json.dumps({"phase": "publishing"}), flush=True)
            first = datetime.now(UTC)
            for _ in range(args.count):
                intent = source.make(1, now=datetime.now(UTC))[0]
                ids.append(intent.intent_id)
                send_sms.delay(encode_intent(intent).decode())
            published_s = (datetime.now(UTC) - first).total_seconds()
            _wait_for_sends(db, worker, args.count, args.max_seconds)
            if args.phases:
                print(json.dumps({"phase": "done"}), flush=True)
            creates = fetch_creates(base_url)
            duplicates = sum(creates[i] - 1 for i in ids if creates[i] > 1)
        finally:
            worker.stop()
            if standin is not None:
                standin.stop()
    rows = db.execute("SELECT created_at, sent_at FROM bench_celery_sends").fetchall()
    latencies = sorted((s - c).total_seconds() for c, s in rows)
    last = max(s for _, s in rows)
    print(
        json.dumps(
            {
                "count": args.count,
                "sent": len(rows),
                "pool": args.pool,
                "concurrency": args.concurrency,
                "publish_per_s": round(args.count / published_s),
                "sends_per_s": round(len(rows) / (last - first).total_seconds(), 1),
                "duplicates": duplicates,
                "latency_ms": {
                    k: round(percentile(latencies, f) * 1000)
                    for k, f in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
                },
            }
        )
    )


def _wait_for_sends(db: Any, worker: ChildProcess, count: int, max_seconds: float) -> None:
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        if db.execute("SELECT count(*) FROM bench_celery_sends").fetchone()[0] >= count:
            return
        if not worker.alive():
            raise SystemExit(f"celery worker exited:\n{worker.tail()}")
        time.sleep(0.2)  # polling the database for the last sends


def _wait_for_consumer(worker: ChildProcess, timeout_s: float = 60.0) -> None:
    """Wait until the Celery worker answers a ping (its start-up is not part of the run)."""
    from bench.celery_app import app

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
        if not worker.alive():
            raise SystemExit(f"celery worker exited:\n{worker.tail()}")
    raise SystemExit("celery worker did not answer a ping within a minute")


if __name__ == "__main__":
    main()
