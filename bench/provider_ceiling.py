"""Provider ceiling: the twilio SDK alone creating messages against the Twilio stand-in.

One process, ``--concurrency`` creates in flight (the worker's default max_in_flight is 20),
through the same HTTP client the SMS channel uses; no queue, no ledger, no gate. The stand-in
runs in its own process (``python -m dunning.sandbox``), as in the end-to-end runs.

    .venv/bin/python bench/provider_ceiling.py --count 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from twilio.rest import Client

from dunning.channels.twilio.http import DunningTwilioHttpClient
from dunning.loadtest.processes import child_env, script_standin, start_standin
from dunning.settings import Settings


async def run(base_url: str, count: int, concurrency: int) -> dict[str, float]:
    settings = Settings()
    http = DunningTwilioHttpClient(timeout_s=10.0, api_base=base_url)
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http)
    body = "【XX消费金融】您的账单已逾期3天，应还金额￥1,234.50，请尽快还款。回复TD退订"
    todo = iter(range(count))

    async def lane() -> None:
        for n in todo:
            await client.messages.create_async(
                to=f"+86170{n:08d}",
                body=body,
                messaging_service_sid="MG00000000000000000000000000000001",
                status_callback=f"http://127.0.0.1:9/twilio/status?intent_id=bench{n}",
            )

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    wall_s = time.perf_counter() - started
    await http.aclose()
    return {
        "count": count,
        "concurrency": concurrency,
        "creates_per_s": round(count / wall_s),
        "client_cpu_share": round((time.process_time() - cpu) / wall_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        standin, base_url = start_standin(child_env({}), Path(tmp))
        try:
            script_standin(base_url, {"drop_callback_rate": 1.0})
            print(json.dumps(asyncio.run(run(base_url, args.count, args.concurrency))))
        finally:
            standin.stop()


if __name__ == "__main__":
    main()
