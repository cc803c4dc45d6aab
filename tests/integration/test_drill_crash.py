"""Crash drill: 2,000 SMS intents, two worker processes, SIGKILL at random moments, restarts.

At the end every intent is final, the stand-in received exactly one create per intent (no
duplicate, none missing) and the ledger's provider reference is the stand-in's SID for each.
Intents a kill left in ``sending`` are resolved by the status callback the stand-in posts to
the webhook (it carries the intent id) or, if the create never left the worker, reclaimed and
sent after the reconcile window.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from dunning.broker.topology import dead_queue
from dunning.intents import Channel
from tests.integration.drill_support import drill, drill_intents

pytestmark = pytest.mark.integration

INTENTS = 2000
KILLS = 6


async def test_kill_9_workers_during_a_run_gives_one_send_per_intent(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random()
    async with drill("crash", tmp_path) as d:
        batch = drill_intents(INTENTS, tag=f"crash{rng.randrange(10**6)}")
        ids = [i.intent_id for i in batch]
        await d.start_webhook()
        await d.publish(batch)
        workers = [d.worker(), d.worker()]
        # Kill at random points of progress, so every kill lands while work is in flight.
        marks = sorted(rng.uniform(0.05, 0.85) * INTENTS for _ in range(KILLS))
        kills: list[int] = []

        async def maybe_kill(done: int) -> None:
            if marks and done >= marks[0]:
                marks.pop(0)
                slot = rng.randrange(len(workers))
                workers[slot].kill()
                kills.append(done)
                workers[slot] = d.worker()

        states = await d.wait_until_final(ids, timeout_s=150, on_progress=maybe_kill)
        await d.standin.wait_idle(timeout_s=120)  # callbacks trail the last send under load
        creates = d.creates()
        refs = await d.provider_refs()
        sids = d.sids()
        dead = await d.queue_depth(dead_queue(Channel.SMS))

    duplicates = {i: n for i, n in creates.items() if n > 1}
    missing = [i for i in ids if creates[i] == 0]
    disagree = [i for i in ids if sids.get(i) != [refs.get(i)]]
    print(
        f"\ncrash drill: {INTENTS} intents, {len(kills)} kills at {kills}, "
        f"{len(duplicates)} duplicates, {len(missing)} missing, states "
        f"{sorted(set(states.values()))}, {time.monotonic() - started:.1f}s"
    )
    assert len(kills) >= 5
    assert duplicates == {}
    assert missing == []
    assert disagree == []
    assert set(states.values()) <= {"sent", "delivered"}
    assert dead == 0
