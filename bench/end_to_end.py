"""dunning end to end: SMS intents through `dunning worker sms` processes to the Twilio stand-in,
ledger on PostgreSQL, on the local RabbitMQ; one `dunning loadtest` run per configuration.

For each worker count: a flood run (all intents offered at ``--flood-rate``) gives the maximum
achieved rate; then a run at half that rate gives the latency at half load (the p99 target).

    .venv/bin/python bench/end_to_end.py --count 5000 --workers 1,2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from dunning.loadtest import LoadTestConfig, LoadTestResult, run_loadtest


def summary(result: LoadTestResult) -> dict[str, object]:
    return {
        "workers": result.config["workers"],
        "offered_per_s": round(result.offered_rate_per_s, 1),
        "achieved_per_s": round(result.achieved_rate_per_s, 1),
        "latency_ms": {k: round(v * 1000) for k, v in result.latency_s.items()},
        "sent": result.sent,
        "duplicates": result.duplicates,
        "creates_seen": result.creates_seen,  # < sent: another consumer took some
        "retries": result.retries,
        "finished": result.finished,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--flood-rate", type=float, default=5000.0)
    parser.add_argument("--half-count", type=int, default=0, help="intents at half rate")
    parser.add_argument(
        "--database",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL holding each run's throw-away ledger schema",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(w) for w in args.workers.split(",")):
            base = LoadTestConfig(
                intents=args.count,
                rate_per_s=args.flood_rate,
                workers=workers,
                run_dir=Path(tmp),
                database_url=args.database,
            )
            flood = run_loadtest(base)
            print(json.dumps({"run": "flood", **summary(flood)}), flush=True)
            half_rate = max(1.0, flood.achieved_rate_per_s / 2)
            half_count = args.half_count or max(100, int(half_rate * 20))
            half = run_loadtest(
                LoadTestConfig(
                    intents=half_count,
                    rate_per_s=half_rate,
                    workers=workers,
                    run_dir=Path(tmp),
                    database_url=args.database,
                )
            )
            print(json.dumps({"run": "half_rate", **summary(half)}), flush=True)


if __name__ == "__main__":
    main()
