"""Worker memory: RSS of one `dunning worker sms` process at start and after each batch of
intents sent through it (ledger on PostgreSQL, Twilio stand-in), to show it is flat.

    .venv/bin/python bench/memory.py --count 100000 --batch 10000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from dunning.loadtest import LoadTestConfig, run_loadtest
from dunning.loadtest.processes import ChildProcess, child_env, script_standin, start_standin
from dunning.settings import Settings

BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"
DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop after this long")
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        standin, base_url = start_standin(child_env({}), Path(tmp))
        script_standin(base_url, {"drop_callback_rate": 1.0})
        env = child_env(
            {
                "DUNNING_BROKER_URL": BROKER,
                "DUNNING_DATABASE_URL": DATABASE,
                "DUNNING_TWILIO_API_BASE": base_url,
                "DUNNING_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
                "DUNNING_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
                "DUNNING_LOG_LEVEL": "warning",
                "DUNNING_LOG_FORMAT": "json",
            }
        )
        worker = ChildProcess(
            "worker", [sys.executable, "-m", "dunning", "worker", "sms"], env,
            Path(tmp) / "worker.log",
        )  # fmt: skip
        try:
            # the first small run waits for the worker to consume, then RSS "at start"
            warm = LoadTestConfig(
                intents=100, rate_per_s=args.rate, attach=True, twilio_api_base=base_url,
                run_dir=Path(tmp), broker_url=BROKER, database_url=DATABASE,
                shared_broker=True, shared_database=True,  # the worker this script started
            )  # fmt: skip
            run_loadtest(warm)
            samples = [{"sent": 0, "rss_mb": round(rss_mb(worker.pid), 1)}]
            print(json.dumps(samples[-1]), flush=True)
            sent, started = 0, time.monotonic()
            while sent < args.count and time.monotonic() - started < args.max_seconds:
                left_s = args.max_seconds - (time.monotonic() - started)
                config = LoadTestConfig(
                    intents=min(args.batch, args.count - sent), rate_per_s=args.rate,
                    attach=True, twilio_api_base=base_url, run_dir=Path(tmp),
                    broker_url=BROKER, database_url=DATABASE, max_seconds=max(left_s, 10),
                    shared_broker=True, shared_database=True,
                )  # fmt: skip
                result = run_loadtest(config)
                sent += result.sent
                samples.append({"sent": sent, "rss_mb": round(rss_mb(worker.pid), 1)})
                print(json.dumps(samples[-1]), flush=True)
        finally:
            worker.stop()
            standin.stop()
    print(json.dumps({"start_mb": samples[0]["rss_mb"], "end_mb": samples[-1]["rss_mb"],
                      "sent": sent, "seconds": round(time.monotonic() - started)}))  # fmt: skip


if __name__ == "__main__":
    main()
