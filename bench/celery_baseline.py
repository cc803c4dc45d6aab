"""The Celery baseline: the same SMS job as a Celery task (see celery_app.py), same RabbitMQ,
same stand-in, same PostgreSQL, same message count. Needs ``pip install 'dunning[bench]'``.

Starts the stand-in and ``celery worker`` (prefork, ``--concurrency`` processes), publishes
``--count`` tasks as fast as Celery publishes them, and waits until every send is recorded.
Throughput = sends / (last send - first publish); latency = recorded send - intent created_at.

    .venv/bin/python bench/celery_baseline.py --count 5000 --concurrency 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from dunning.intents import encode_intent
from dunning.loadtest.generator import IntentMix, SyntheticIntents
from dunning.loadtest.metrics import percentile
from dunning.loadtest.processes import ChildProcess, child_env, script_standin, start_standin

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pool", default="prefork", help="prefork or threads")
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    db = psycopg.connect(PG_DSN, autocommit=True)
    db.execute(
        "CREATE TABLE IF NOT EXISTS bench_celery_sends (intent_id text PRIMARY KEY, "
        "created_at timestamptz NOT NULL, sent_at timestamptz NOT NULL, sid text NOT NULL)"
    )
    db.execute("TRUNCATE bench_celery_sends")
    with tempfile.TemporaryDirectory() as tmp:
        standin, base_url = start_standin(child_env({}), Path(tmp))
        script_standin(base_url, {"drop_callback_rate": 1.0})
        env = child_env(
            {"BENCH_TWILIO_API_BASE": base_url, "BENCH_PG_DSN": PG_DSN, "BENCH_BROKER_URL": BROKER}
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

            source = SyntheticIntents(IntentMix())
            first = datetime.now(UTC)
            for _ in range(args.count):
                intent = source.make(1, now=datetime.now(UTC))[0]
                send_sms.delay(encode_intent(intent).decode())
            published_s = (datetime.now(UTC) - first).total_seconds()
            deadline = time.monotonic() + args.max_seconds
            done = 0
            while time.monotonic() < deadline:
                done = db.execute("SELECT count(*) FROM bench_celery_sends").fetchone()[0]
                if done >= args.count:
                    break
                if not worker.alive():
                    raise SystemExit(f"celery worker exited:\n{worker.tail()}")
                time.sleep(0.5)  # polling the database for the last sends
        finally:
            worker.stop()
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
                "latency_ms": {
                    k: round(percentile(latencies, f) * 1000)
                    for k, f in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
                },
            }
        )
    )


if __name__ == "__main__":
    main()
