"""Replay drill: 500 intents dead-lettered while the provider refused their numbers; the fault
is fixed and ``dunning dlq replay`` runs, is killed with SIGKILL part-way, and runs again.
Every intent is delivered exactly once and the dead-letter queue ends empty.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dunning.broker.topology import dead_queue
from dunning.intents import Channel
from tests.integration.drill_support import ROOT, drill, drill_intents

pytestmark = pytest.mark.integration

INTENTS = 500
DEAD = dead_queue(Channel.SMS)


async def test_replay_after_the_fix_interrupted_by_kill_9_sends_each_once(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    async with drill("replay", tmp_path) as d:
        batch = drill_intents(
            INTENTS, tag=f"replay{time.time_ns()}", phone=lambda i: f"+86137{i:08d}"
        )
        ids = [i.intent_id for i in batch]
        for intent in batch:  # the fault: the provider refuses every one of these numbers
            d.standin.behaviour.failure_numbers[intent.recipient.phone or ""] = 21211
        await d.start_webhook()
        d.worker()
        await d.publish(batch)
        dead_states = await d.wait_until_final(ids, timeout_s=90)
        assert set(dead_states.values()) == {"dead"}
        await d.wait_for_depth(DEAD, INTENTS, timeout_s=30)
        assert sum(d.creates().values()) == 0

        for intent in batch:  # the fix
            del d.standin.behaviour.failure_numbers[intent.recipient.phone or ""]
        replay = ["dlq", "replay", "--channel", "sms"]
        interrupted = d.spawn([*replay, "--rate", "100"])
        await d.wait_for_depth_below(DEAD, INTENTS - 100, timeout_s=60)
        await asyncio.to_thread(interrupted.kill)
        left_after_kill = await d.queue_depth(DEAD)
        resumed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "dunning", *replay],
            env=d.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        states = await d.wait_until_final(ids, timeout_s=90)
        await d.standin.wait_idle(timeout_s=120)  # callbacks trail the last send under load
        creates = d.creates()
        dead_left = await d.queue_depth(DEAD)

    duplicates = {i: n for i, n in creates.items() if n > 1}
    missing = [i for i in ids if creates[i] == 0]
    print(
        f"\nreplay drill: {INTENTS} dead intents replayed, 1 replay killed with "
        f"{left_after_kill} still dead, {len(duplicates)} duplicates, {len(missing)} missing, "
        f"{time.monotonic() - started:.1f}s"
    )
    assert 0 < left_after_kill < INTENTS
    assert duplicates == {}
    assert missing == []
    assert set(states.values()) <= {"sent", "delivered"}
    assert dead_left == 0
