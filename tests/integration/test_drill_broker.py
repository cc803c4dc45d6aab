"""Broker drill: RabbitMQ force-closes every connection of the drill's vhost several times
during a run (``rabbitmqctl close_all_connections``); the workers reconnect by themselves and
every intent is still sent exactly once.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from dunning.broker.topology import dead_queue
from dunning.intents import Channel
from tests.integration.drill_support import drill, drill_intents

pytestmark = pytest.mark.integration

INTENTS = 1000
CLOSES = 4


def close_all_connections(broker_url: str) -> None:
    vhost = unquote(urlsplit(broker_url).path.lstrip("/")) or "/"
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl is not installed")
    done = subprocess.run(
        [ctl, "close_all_connections", "--vhost", vhost, "drill"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_forced_connection_closes_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random()
    async with drill("broker", tmp_path) as d:
        batch = drill_intents(INTENTS, tag=f"broker{rng.randrange(10**6)}")
        ids = [i.intent_id for i in batch]
        await d.start_webhook()
        await d.publish(batch)
        workers = [d.worker(), d.worker()]
        marks = sorted(rng.uniform(0.05, 0.8) * INTENTS for _ in range(CLOSES))
        closes: list[int] = []

        async def maybe_close(done: int) -> None:
            if marks and done >= marks[0]:
                marks.pop(0)
                await asyncio.to_thread(close_all_connections, d.broker_url)
                closes.append(done)

        states = await d.wait_until_final(ids, timeout_s=150, on_progress=maybe_close)
        await d.standin.wait_idle(timeout_s=120)  # callbacks trail the last send under load
        alive = [w.process is not None and w.process.poll() is None for w in workers]
        creates = d.creates()
        dead = await d.queue_depth(dead_queue(Channel.SMS))

    duplicates = {i: n for i, n in creates.items() if n > 1}
    missing = [i for i in ids if creates[i] == 0]
    print(
        f"\nbroker drill: {INTENTS} intents, {len(closes)} forced closes at {closes}, "
        f"{len(duplicates)} duplicates, {len(missing)} missing, "
        f"{time.monotonic() - started:.1f}s"
    )
    assert len(closes) >= 3
    assert alive == [True, True]  # they reconnected; nobody restarted them
    assert duplicates == {}
    assert missing == []
    assert set(states.values()) <= {"sent", "delivered"}
    assert dead == 0
