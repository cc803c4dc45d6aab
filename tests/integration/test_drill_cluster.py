"""Cluster drill: a three-node RabbitMQ cluster of the test's own (tests/integration/
cluster_support.py), quorum queues with a replica on every node, 5,000 SMS intents published
while two workers send them, and the node leading ``dunning.sms`` killed with SIGKILL mid-run,
then brought back.

Every client gets the list of all three nodes, in an order that puts the publisher and one
worker on the leader and the other worker on a follower: the publisher and that worker lose
their node and go on with the next, the other worker keeps its connection while the queue elects
a new leader. At the end every intent was sent exactly once at the Twilio stand-in (the ledger
claim absorbed the redeliveries and the batch republished after the loss), the ledger says sent
or delivered for each, every queue is empty (nothing stuck in a delay queue, no dead letter) and
the killed node is back as an online member of the queue.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import dead_queue, work_queue
from dunning.intents import Channel
from dunning.producers.publisher import IntentPublisher
from tests.integration.cluster_support import ClusterUnavailableError, RabbitCluster, RabbitNode
from tests.integration.drill_support import DRILL_NOW, drill, drill_intents
from tests.services import require

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

INTENTS = 5000
BATCH = 250
LEAD = 1000  # the publisher stays at most this many intents ahead of the sends
KILL_AT = 1500  # sends done when the leader dies: publishing and sending are both under way
RESTART_AFTER = 500  # more sends on two nodes before the killed node comes back
SMS = work_queue(Channel.SMS)


def _unavailable(reason: str) -> NoReturn:
    message = f"cannot run a 3-node RabbitMQ cluster on this machine: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RabbitCluster]:
    require("postgres")  # before the cluster's half a minute of start-up
    try:
        cluster = RabbitCluster(tmp_path / "cluster")
    except ClusterUnavailableError as exc:
        _unavailable(str(exc))
    try:
        try:
            cluster.start()
        except ClusterUnavailableError as exc:
            _unavailable(str(exc))
        yield cluster
    finally:
        cluster.destroy()


def _starting_at(urls: list[str], first: int) -> str:
    """The URL list rotated so that ``urls[first]`` comes first."""
    first %= len(urls)
    return ",".join(urls[first:] + urls[:first])


async def _wait_drained(cluster: RabbitCluster, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Poll every queue until none holds a message; the queues, or TimeoutError naming them.

    Redeliveries that met an intent still being sent wait ``reconcile_after_s`` in a delay queue
    before the ledger turns them away, so draining can trail the last send by that long.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        queues = await asyncio.to_thread(cluster.queues, cluster.live_node())
        holding = {name: q["messages"] for name, q in queues.items() if q["messages"]}
        if not holding:
            return queues
        if time.monotonic() > deadline:
            raise TimeoutError(f"queues not drained: {holding}")
        await asyncio.sleep(1)  # poll interval of the condition


async def test_killing_the_sms_leader_node_mid_run_sends_every_intent_once(
    tmp_path: Path, cluster: RabbitCluster
) -> None:
    started = time.monotonic()
    rng = random.Random()
    urls = cluster.urls
    async with drill("cluster", tmp_path, broker_url=",".join(urls)) as d:
        topology = await asyncio.to_thread(cluster.queues, cluster.nodes[0])
        assert sorted(topology[SMS]["members"]) == sorted(n.name for n in cluster.nodes)
        leader: RabbitNode = cluster.node_named(topology[SMS]["leader"])
        on_leader = _starting_at(urls, cluster.nodes.index(leader))
        on_follower = _starting_at(urls, cluster.nodes.index(leader) + 1)

        batch = drill_intents(INTENTS, tag=f"cluster{rng.randrange(10**6)}")
        ids = [i.intent_id for i in batch]
        await d.start_webhook()
        workers = [d.worker(DUNNING_BROKER_URL=on_leader), d.worker(DUNNING_BROKER_URL=on_follower)]
        ledger = d.open_ledger()
        publisher = await asyncio.to_thread(RabbitPublisher, on_leader)
        out = IntentPublisher(
            publisher,
            record=lambda b: ledger.record_published(b, now=DRILL_NOW),
            mark=lambda ids: ledger.mark_published(ids, now=DRILL_NOW),
            batch_size=BATCH,
        )
        published = 0
        killed_at: list[int] = []
        restarted: list[asyncio.Task[None]] = []

        async def steer(done: int) -> None:
            nonlocal published
            if not killed_at and done >= KILL_AT:
                await asyncio.to_thread(cluster.kill, leader)
                killed_at.append(done)
            elif killed_at and not restarted and done >= killed_at[0] + RESTART_AFTER:
                restarted.append(asyncio.create_task(asyncio.to_thread(cluster.restart, leader)))
            while published < INTENTS and published - done < LEAD:
                await asyncio.to_thread(out.publish, batch[published : published + BATCH])
                published += BATCH

        try:
            states = await d.wait_until_final(ids, timeout_s=360, on_progress=steer)
            sent_s = time.monotonic() - started
            await d.standin.wait_idle(timeout_s=120)  # callbacks trail the last send under load
            for task in restarted:
                await task
            queues = await _wait_drained(cluster, timeout_s=120)
        finally:
            await asyncio.to_thread(publisher.close)
        back = await asyncio.to_thread(cluster.queues, leader)
        alive = [w.process is not None and w.process.poll() is None for w in workers]
        lost = ["broker connection lost" in w.log_path.read_text() for w in workers]
        creates = d.creates()
        refs = await d.provider_refs()
        sids = d.sids()

    duplicates = {i: n for i, n in creates.items() if n > 1}
    missing = [i for i in ids if creates[i] == 0]
    disagree = [i for i in ids if sids.get(i) != [refs.get(i)]]
    print(
        f"\ncluster drill: {INTENTS} intents, leader {leader.name} killed after {killed_at} "
        f"sends and restarted, publisher failovers {publisher.failovers} and nack retries "
        f"{publisher.nack_retries}, workers that lost "
        f"their node {lost}, {len(duplicates)} duplicates, {len(missing)} missing, states "
        f"{sorted(set(states.values()))}, all final after {sent_s:.1f}s, "
        f"{time.monotonic() - started:.1f}s in all"
    )
    assert killed_at
    assert leader.starts == 2
    assert duplicates == {}
    assert missing == []
    assert disagree == []
    assert set(states.values()) <= {"sent", "delivered"}
    assert queues[dead_queue(Channel.SMS)]["messages"] == 0
    assert publisher.failovers >= 1  # its node died under it; the batch went to the next one
    assert lost[0]  # the worker on the leader lost it and moved on by itself ...
    assert alive == [True, True]  # ... and no worker had to be restarted
    assert sorted(back[SMS]["online"]) == sorted(n.name for n in cluster.nodes)
