"""The bureau worker on real RabbitMQ and PostgreSQL: claim, gate, snapshot, dead letter.

Two bureau intents go through the broker: U1 was sent a credit-bureau notice 20 days ago and
is furnished (its snapshot lands in ``bureau_records``); U2, a third-party account nobody
notified, is refused by 12 CFR 1006.30(a), dead-lettered with the rule id, and listed among
the cycle's exclusions. A copy of U1's message changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, dead_queue
from dunning.bureau.furnisher import Furnisher
from dunning.bureau.records import cycle_of
from dunning.clock import SystemClock
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.records import IntentState
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from tests.bureau_rig import GATE, BureauRig, bureau_intent, us_account
from tests.services import postgres_schema, rabbitmq_vhost_url, require, reset_rabbitmq_topology

pytestmark = pytest.mark.integration


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.1)  # poll interval of the condition, not a synchronisation


def publish(url: str, intents: list[ContactIntent]) -> None:
    publisher = RabbitPublisher(url)
    try:
        publisher.publish_many(
            OutboundMessage(
                INTENTS_EXCHANGE, "bureau", encode_intent(i), {}, message_id=i.intent_id
            )
            for i in intents
        )
    finally:
        publisher.close()


def queue_depth(url: str, queue: str) -> int:
    publisher = RabbitPublisher(url)
    try:
        return publisher.queue_stats(queue)[0]
    finally:
        publisher.close()


async def test_the_bureau_worker_furnishes_the_notified_and_dead_letters_the_rest() -> None:
    require("rabbitmq")
    require("postgres")
    url = rabbitmq_vhost_url("dunning-bureau-worker")

    def prepare() -> None:
        reset_rabbitmq_topology(url)
        admin = RabbitPublisher(url)
        admin.declare(build_topology(delivery_limit=5))
        admin.close()

    await asyncio.to_thread(prepare)
    now = datetime.now(UTC).replace(microsecond=0)
    created = now - timedelta(minutes=1)
    with postgres_schema() as schema_url:
        ledger = await asyncio.to_thread(Ledger.open, schema_url)
        try:
            rig = BureauRig(ledger, now)
            await asyncio.to_thread(rig.notice, "U1", now - timedelta(days=20))
            u1 = bureau_intent("U1", created, 95, us_account("U1", "third_party"))
            u2 = bureau_intent("U2", created, 95, us_account("U2", "third_party"))
            await asyncio.to_thread(ledger.record_published, [u1, u2], now=created)
            await asyncio.to_thread(publish, url, [u1, u2])

            counter = OutcomeCounter()
            clock = SystemClock()
            parts = WorkerParts(
                channel=Channel.BUREAU, adapter=Furnisher(ledger, GATE.decide, clock),
                ledger=ledger, clock=clock, gate=GATE.decide, middleware=(counter,),
            )  # fmt: skip
            settings = Settings(broker_url=url, database_url=schema_url, delivery_limit=5)
            worker = build_worker(settings, parts, declare=False)
            task = asyncio.create_task(worker.run())
            try:

                async def handled(count: int) -> bool:
                    return sum(counter.counts.values()) >= count

                await eventually(lambda: handled(2))
                await asyncio.to_thread(publish, url, [u1])  # a copy, once U1 is furnished
                await eventually(lambda: handled(3))
            finally:
                worker.stop()
                assert await task == 0

            cycle = cycle_of(created.astimezone(u1.zone).date())
            record = await asyncio.to_thread(ledger.bureau_record, "U1", cycle)
            assert record is not None
            assert (record["status_code"], record["intent_id"]) == ("93", u1.intent_id)
            assert record["detail"]["original_creditor"] == "Acme Bank"
            assert await asyncio.to_thread(ledger.bureau_record, "U2", cycle) is None
            assert ledger.get_state(u1.intent_id) is IntentState.SENT
            assert ledger.get_state(u2.intent_id) is IntentState.DEAD
            assert counter.counts["sent"] == 1
            assert counter.counts["duplicate"] == 1
            assert counter.counts["dead"] == 1
            assert await asyncio.to_thread(queue_depth, url, dead_queue(Channel.BUREAU)) == 1
            excluded = await asyncio.to_thread(ledger.cycle_exclusions, cycle)
            assert [(e[0], e[2]) for e in excluded] == [("U2", "US.stage.late.1006.30a")]
        finally:
            ledger.close()
