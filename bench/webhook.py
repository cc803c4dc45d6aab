"""Signed status callbacks per second through one `dunning webhook` process.

Starts ``dunning webhook --sandbox`` (one process, uvicorn) with its ledger in a throw-away
PostgreSQL schema and its receipts feed on a RabbitMQ vhost of its own (both removed
afterwards), then posts Twilio-signed SMS status callbacks (``sent`` then ``delivered`` per
message, as Twilio does) with ``--concurrency`` requests in flight. Each callback is the whole
path: signature check, receipt stored in the ledger, feed published from the ledger. Prints
callbacks/s, the webhook's CPU per callback (from /proc) and the load average.

    .venv/bin/python bench/webhook.py --callbacks 4000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

from dunning.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench/ siblings
from bench.evaluate import CONFIG, own_schema, own_vhost

_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"the webhook exited; its output is in {log}")
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)  # polling the child for readiness
    raise SystemExit("the webhook did not answer /healthz within 30 s")


async def _post_all(base: str, token: str, count: int, concurrency: int) -> tuple[float, int]:
    """Post ``count`` callbacks; returns (wall seconds, how many were answered 200)."""
    validator = RequestValidator(token)
    url = f"{base}/twilio/status"
    bodies = []
    for n in range(count):
        status = "sent" if n % 2 == 0 else "delivered"
        params = {
            "MessageSid": f"SMbench{n // 2:026d}",
            "MessageStatus": status,
            "AccountSid": Settings().twilio_account_sid,
            "To": "+8613800000000",
            "From": "+15005550006",
            "ApiVersion": "2010-04-01",
        }
        bodies.append((params, validator.compute_signature(url, params)))
    queue: asyncio.Queue[tuple[dict[str, str], str]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    answered = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal answered
            while not queue.empty():
                params, signature = queue.get_nowait()
                headers = {"X-Twilio-Signature": signature}
                async with session.post(url, data=params, headers=headers) as response:
                    await response.read()
                    answered += response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--callbacks", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    token = Settings().twilio_auth_token
    log = Path(tempfile.mkdtemp(prefix="dunning-bench-webhook-")) / "webhook.log"  # kept
    with own_vhost() as broker, own_schema() as ledger:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
        env.update({"DUNNING_LOG_FORMAT": "json", "DUNNING_CONFIG_DIR": str(CONFIG)})
        argv = [sys.executable, "-m", "dunning", "webhook", "--sandbox", "--port", str(port),
                "--public-url", base, "--database-url", ledger, "--broker", broker]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                asyncio.run(_wait_ready(base, proc, log))
                asyncio.run(_post_all(base, token, min(200, args.callbacks), args.concurrency))
                cpu_before = _cpu_s(proc.pid)
                load_before = os.getloadavg()[0]
                wall_s, answered = asyncio.run(
                    _post_all(base, token, args.callbacks, args.concurrency)
                )
                cpu_s = _cpu_s(proc.pid) - cpu_before
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print(
        f"{answered:,} of {args.callbacks:,} callbacks answered 200 in {wall_s:.1f} s: "
        f"{args.callbacks / wall_s:,.0f} callbacks/s, one webhook process, "
        f"{args.concurrency} in flight\n"
        f"  webhook CPU {cpu_s:.1f} s = {cpu_s / args.callbacks * 1000:.2f} ms per callback "
        f"({cpu_s / wall_s * 100:.0f} % of a core)\n"
        f"  machine: {os.cpu_count()} CPUs, load average {load_before:.1f} -> "
        f"{os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
