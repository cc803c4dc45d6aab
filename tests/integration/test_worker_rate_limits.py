"""`dunning worker sms --metrics-port 0` as docker-compose and the systemd unit run it: the rate
limit of config/channels.toml holds, shared through Redis.

The worker is a real subprocess on RabbitMQ (a vhost of its own) and Redis; its SMS go to the
Twilio stand-in in this test's loop, where the arrival of each create is observed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import asyncio as aioredis

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology
from dunning.intents import Channel, encode_intent
from dunning.sandbox.twilio_api import TwilioStandIn
from tests.factories import T0, make_intent
from tests.services import REDIS_URL, rabbitmq_vhost_url, require, reset_rabbitmq_topology

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
AUTH_TOKEN = "rate-limit-token"
RATE_PER_S = 2.0  # [rate_limits.sms] account_per_s in the test's channels.toml
BURST = 1
SENDS = 8


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    channels = config / "channels.toml"
    text = channels.read_text(encoding="utf-8")
    shipped = "[rate_limits.sms]\naccount_per_s = 1000.0\nsender_per_s = 1.0\n"
    assert shipped in text, "config/channels.toml changed: update this test's edit"
    low = f"[rate_limits.sms]\naccount_per_s = {RATE_PER_S}\n"
    channels.write_text(text.replace(shipped, low).replace("burst = 1", f"burst = {BURST}", 1))
    return config


def _event(line: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


async def test_a_worker_with_a_metrics_port_obeys_the_configured_rate_through_redis(
    tmp_path: Path,
) -> None:
    require("rabbitmq")
    require("redis")
    broker_url = rabbitmq_vhost_url("dunning-rate-limits")
    await asyncio.to_thread(reset_rabbitmq_topology, broker_url)
    admin = RabbitPublisher(broker_url)
    admin.declare(build_topology())
    account_sid = "AC" + uuid.uuid4().hex  # keys of this run only: dunning:rl:tat:sms:account:AC…
    redis = aioredis.Redis.from_url(REDIS_URL)
    async with TwilioStandIn(account_sid, AUTH_TOKEN) as standin:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")},
            "DUNNING_BROKER_URL": broker_url,
            "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
            "DUNNING_CONFIG_DIR": str(_config(tmp_path)),
            "DUNNING_REDIS_URL": REDIS_URL,
            "DUNNING_NOW": T0.isoformat(),  # 10:00 in Shanghai: the contact window is open
            "DUNNING_LOG_FORMAT": "json",
            "DUNNING_TWILIO_ACCOUNT_SID": account_sid,
            "DUNNING_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "DUNNING_TWILIO_API_BASE": standin.base_url,
            "DUNNING_WEBHOOK_PUBLIC_URL": "http://127.0.0.1:9",
            "DUNNING_RECONCILE_EVERY_S": "0",
        }
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dunning", "worker", "sms",
            "--metrics-port", "0", "--metrics-host", "127.0.0.1",
            env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        seen: list[bytes] = []
        try:
            assert worker.stdout is not None
            async with asyncio.timeout(60):
                while not any((_event(line) or {}).get("event") == "consuming" for line in seen):
                    line = await worker.stdout.readline()
                    if not line:
                        pytest.fail("worker exited:\n" + b"".join(seen).decode()[-3000:])
                    seen.append(line)
            assert any((_event(line) or {}).get("event") == "metrics.listening" for line in seen)

            created, expires = T0 - timedelta(minutes=1), T0 + timedelta(days=1)
            intents = []
            for n in range(SENDS):  # distinct people and numbers: no cap interferes
                intent = make_intent(Channel.SMS, created_at=created, expires_at=expires)
                phone = f"+86139{n:08d}"
                intents.append(replace(intent, recipient=replace(intent.recipient, phone=phone)))
            admin.publish_many(
                OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(i), {}) for i in intents
            )
            first_at = last_at = 0.0
            keys: list[bytes] = []
            async with asyncio.timeout(60):
                while len(standin.requests) < SENDS:
                    if standin.requests and not first_at:
                        first_at = time.monotonic()
                        keys = await redis.keys(f"dunning:rl:*{account_sid}*")
                    await asyncio.sleep(0.02)  # poll interval of the observation
                last_at = time.monotonic()
        finally:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                await asyncio.wait_for(worker.wait(), 30)
            await redis.aclose()
            admin.close()
    # GCRA: after `burst` sends back to back, one every 1/rate seconds. A worker without the
    # configured limit sends all of them within a fraction of a second.
    least_span_s = (SENDS - BURST) / RATE_PER_S
    observed_span_s = last_at - first_at
    assert observed_span_s >= least_span_s - 0.5, (observed_span_s, least_span_s)
    assert keys, "the limiter's state is not in Redis"
    assert standin.creates_per_intent() == {i.intent_id: 1 for i in intents}
