"""The worker pipeline end to end on the memory broker and a SQLite ledger."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, dead_queue, work_queue
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import SystemClock
from dunning.errors import PermanentChannelError, RateLimitedError, TransientChannelError
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.records import ContactHistory, GateDecision, IntentState
from dunning.settings import Settings
from dunning.workers import headers as h
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import DEFAULT_MIDDLEWARE, OutcomeCounter, OutcomeLog
from dunning.workers.pipeline import Gate
from dunning.workers.runtime import Worker
from tests.factories import make_intent

NOW = datetime.now(UTC)
Send = Callable[[ContactIntent, int], Awaitable[SendResult]]
Lookup = Callable[[ContactIntent, datetime], Awaitable[SendResult | None]]


def fresh(**changes: Any) -> ContactIntent:
    return make_intent(
        Channel.SMS, created_at=NOW - timedelta(minutes=1), expires_at=NOW + timedelta(hours=1),
        **changes,
    )  # fmt: skip


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.server = MemoryBroker()
        self.server.declare(build_topology())
        self.publisher = self.server.publisher()
        self.ledger = Ledger.open(f"sqlite:///{tmp / 'ledger.db'}")
        self.sent: list[tuple[str, int]] = []
        self.counter = OutcomeCounter()
        self.settings = Settings(retry_delays_s=(1,), max_attempts=3, shutdown_grace_s=5)

    async def ok(self, intent: ContactIntent, attempt: int) -> SendResult:
        self.sent.append((intent.intent_id, attempt))
        return SendResult(provider_ref=f"SM{len(self.sent):032d}", status="queued")

    def publish(self, *bodies: bytes | ContactIntent) -> None:
        self.publisher.publish_many(
            OutboundMessage(
                INTENTS_EXCHANGE,
                "sms",
                encode_intent(b) if isinstance(b, ContactIntent) else b,
                {},
            )
            for b in bodies
        )

    def worker(
        self, send: Send | None = None, gate: Gate | None = None, lookup: Lookup | None = None
    ) -> Worker:
        parts = WorkerParts(
            channel=Channel.SMS,
            adapter=CallbackChannel(Channel.SMS, send or self.ok, lookup),
            ledger=self.ledger,
            clock=SystemClock(),
            gate=gate,
            broker=self.server.client(),
            middleware=(self.counter,),
        )
        return build_worker(self.settings, parts, declare=False)

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 10) -> None:
        await self.counter.wait_until(predicate, timeout_s)

    def outcomes(self) -> int:
        return sum(self.counter.counts.values())


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.ledger.close()


async def run_until(rig: Rig, worker: Worker, predicate: Callable[[], bool]) -> None:
    task = asyncio.create_task(worker.run())
    try:
        await rig.until(predicate)
    finally:
        worker.stop()
        assert await task == 0


async def test_each_intent_is_sent_once_and_recorded(rig: Rig) -> None:
    intents = [fresh() for _ in range(5)]
    rig.publish(*intents)
    await run_until(rig, rig.worker(), lambda: rig.outcomes() == 5)
    assert sorted(i for i, _ in rig.sent) == sorted(i.intent_id for i in intents)
    assert {rig.ledger.get_state(i.intent_id) for i in intents} == {IntentState.SENT}
    assert rig.server.queue_depth(work_queue(Channel.SMS)) == 0


def test_a_worker_whose_parts_name_no_middleware_runs_the_default_list(rig: Rig) -> None:
    parts = WorkerParts(
        channel=Channel.SMS,
        adapter=CallbackChannel(Channel.SMS, rig.ok),
        ledger=rig.ledger,
        clock=SystemClock(),
        broker=rig.server.client(),
    )
    worker = build_worker(rig.settings, parts, declare=False)
    assert worker.middleware == DEFAULT_MIDDLEWARE
    assert [type(m) for m in worker.middleware] == [OutcomeLog]


async def test_redelivered_sent_intent_is_acked_without_sending(rig: Rig) -> None:
    rig.settings = dataclasses.replace(rig.settings, max_in_flight=1)
    intent = fresh()
    rig.publish(intent, intent, intent)
    await run_until(rig, rig.worker(), lambda: rig.outcomes() == 3)
    assert len(rig.sent) == 1
    assert rig.counter.counts["duplicate"] == 2


async def test_malformed_message_is_dead_lettered_and_the_worker_goes_on(rig: Rig) -> None:
    good = fresh()
    rig.publish(b"{not json", good)
    await run_until(rig, rig.worker(), lambda: rig.outcomes() == 2)
    assert [i for i, _ in rig.sent] == [good.intent_id]
    dead = rig.publisher.get(dead_queue(Channel.SMS))
    assert dead is not None
    assert dead.body == b"{not json"
    assert dead.headers[h.ERROR_CLASS] == "DecodeError"
    assert "not JSON" in dead.headers[h.REASON]


async def test_permanent_error_dead_letters_with_code_and_records_opt_out(rig: Rig) -> None:
    async def unsubscribed(intent: ContactIntent, attempt: int) -> SendResult:
        raise PermanentChannelError("recipient unsubscribed", provider_code="21610", suppress=True)

    intent = fresh()
    rig.publish(intent)
    await run_until(rig, rig.worker(unsubscribed), lambda: rig.outcomes() == 1)
    assert rig.ledger.get_state(intent.intent_id) is IntentState.DEAD
    dead = rig.publisher.get(dead_queue(Channel.SMS))
    assert dead is not None
    assert dead.headers[h.PROVIDER_CODE] == "21610"
    assert dead.headers[h.ATTEMPT] == 1
    history = rig.ledger.history(intent.person_id, since=NOW - timedelta(days=1))
    assert [s.reason for s in history.suppressions] == ["opt_out"]


async def test_transient_error_retries_through_the_delay_queue(rig: Rig) -> None:
    async def flaky(intent: ContactIntent, attempt: int) -> SendResult:
        if attempt == 1:
            raise TransientChannelError("provider 503", provider_code="503")
        return await rig.ok(intent, attempt)

    intent = fresh()
    rig.publish(intent)
    await run_until(rig, rig.worker(flaky), lambda: rig.counter.counts["sent"] == 1)
    assert rig.sent == [(intent.intent_id, 2)]
    assert rig.counter.counts["retry"] == 1


async def test_gives_up_after_max_attempts_into_the_dead_letter_queue(rig: Rig) -> None:
    rig.settings = dataclasses.replace(rig.settings, max_attempts=2)

    async def down(intent: ContactIntent, attempt: int) -> SendResult:
        raise TransientChannelError("provider 500", provider_code="500")

    intent = fresh()
    rig.publish(intent)
    await run_until(rig, rig.worker(down), lambda: rig.counter.counts["dead"] == 1)
    dead = rig.publisher.get(dead_queue(Channel.SMS))
    assert dead is not None
    assert "gave up after 2 attempts" in dead.headers[h.REASON]
    assert rig.ledger.get_state(intent.intent_id) is IntentState.DEAD


async def test_rate_limit_does_not_spend_an_attempt(rig: Rig) -> None:
    calls: list[int] = []

    async def throttled_once(intent: ContactIntent, attempt: int) -> SendResult:
        calls.append(attempt)
        if len(calls) == 1:
            raise RateLimitedError("429 Too Many Requests", provider_code="20429", retry_after_s=1)
        return await rig.ok(intent, attempt)

    intent = fresh()
    rig.publish(intent)
    await run_until(rig, rig.worker(throttled_once), lambda: rig.counter.counts["sent"] == 1)
    assert calls == [1, 1]


async def test_unexpected_exception_dead_letters_and_worker_survives(rig: Rig) -> None:
    boom = fresh()

    async def buggy(intent: ContactIntent, attempt: int) -> SendResult:
        if intent.intent_id == boom.intent_id:
            raise ZeroDivisionError("template arithmetic")
        return await rig.ok(intent, attempt)

    good = fresh()
    rig.publish(boom, good)
    await run_until(rig, rig.worker(buggy), lambda: rig.outcomes() == 2)
    dead = rig.publisher.get(dead_queue(Channel.SMS))
    assert dead is not None
    assert dead.headers[h.ERROR_CLASS] == "ZeroDivisionError"
    assert [i for i, _ in rig.sent] == [good.intent_id]


async def test_expired_intent_is_never_sent(rig: Rig) -> None:
    stale = make_intent(
        Channel.SMS, created_at=NOW - timedelta(days=3), expires_at=NOW - timedelta(days=1)
    )
    rig.publish(stale)
    await run_until(rig, rig.worker(), lambda: rig.outcomes() == 1)
    assert rig.sent == []
    assert rig.ledger.get_state(stale.intent_id) is IntentState.EXPIRED


async def test_gate_defer_waits_in_a_delay_queue_and_suppress_never_sends(rig: Rig) -> None:
    deferred, suppressed = fresh(), fresh()
    opens = datetime.now(UTC) + timedelta(seconds=1)

    def gate(intent: ContactIntent, history: ContactHistory, now: datetime) -> GateDecision:
        if intent.intent_id == suppressed.intent_id:
            return GateDecision("suppress", "CN.optout", "person opted out")
        if now < opens:
            return GateDecision("defer", "CN.window", "outside 08:00-22:00", until=opens)
        return GateDecision.allow()

    rig.publish(deferred, suppressed)
    await run_until(rig, rig.worker(gate=gate), lambda: rig.counter.counts["sent"] == 1)
    assert rig.sent == [(deferred.intent_id, 1)]
    assert rig.counter.counts["deferred"] >= 1
    assert rig.ledger.get_state(suppressed.intent_id) is IntentState.SUPPRESSED


async def test_stop_finishes_in_flight_sends_and_acks_them(rig: Rig) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(intent: ContactIntent, attempt: int) -> SendResult:
        started.set()
        await release.wait()
        return await rig.ok(intent, attempt)

    rig.settings = dataclasses.replace(rig.settings, max_in_flight=1)
    intents = [fresh() for _ in range(3)]
    rig.publish(*intents)
    worker = rig.worker(slow)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    release.set()
    assert await asyncio.wait_for(task, 10) == 0
    assert len(rig.sent) == 1  # the one in flight finished; the others were handed back
    assert rig.server.queue_depth(work_queue(Channel.SMS)) == 2
    assert rig.ledger.get_state(intents[0].intent_id) is IntentState.SENT


async def test_ambiguous_failure_holds_the_intent_until_a_receipt_settles_it(rig: Rig) -> None:
    from dunning.receipts.statuses import rank

    rig.settings = dataclasses.replace(rig.settings, reconcile_after_s=1)
    calls: list[int] = []

    async def accepted_then_timed_out(intent: ContactIntent, attempt: int) -> SendResult:
        calls.append(attempt)
        # The provider took the request; its status callback reaches the webhook...
        rig.ledger.record_receipt(
            "SM" + "1" * 32, "sent", channel=Channel.SMS, rank=rank(Channel.SMS, "sent"),
            now=datetime.now(UTC), intent_id=intent.intent_id,
        )  # fmt: skip
        # ...but the answer to our request was lost.
        raise TransientChannelError("twilio request timed out", ambiguous=True)

    intent = fresh()
    rig.publish(intent)
    worker = rig.worker(accepted_then_timed_out)
    await run_until(rig, worker, lambda: rig.counter.counts["duplicate"] == 1)
    assert calls == [1]  # never sent a second time
    assert rig.counter.counts["in_doubt"] == 1
    assert rig.ledger.get_state(intent.intent_id) in {IntentState.SENT, IntentState.DELIVERED}


@pytest.mark.parametrize("at_provider", [True, False])
async def test_a_reclaimed_intent_is_looked_up_before_it_is_sent_again(
    rig: Rig, at_provider: bool
) -> None:
    rig.settings = dataclasses.replace(rig.settings, reconcile_after_s=1)
    intent = fresh()
    # A worker claimed it and died: no outcome, no receipt, the window has passed.
    died_at = datetime.now(UTC) - timedelta(seconds=5)
    rig.ledger.record_published([intent], now=died_at)
    rig.ledger.claim(intent, worker="dead:1", now=died_at, reconcile_after_s=1)
    asked: list[datetime] = []

    async def lookup(candidate: ContactIntent, since: datetime) -> SendResult | None:
        asked.append(since)
        return SendResult("SM" + "9" * 32, "delivered") if at_provider else None

    rig.publish(intent)
    await run_until(rig, rig.worker(lookup=lookup), lambda: rig.outcomes() == 1)
    assert asked == [died_at]
    if at_provider:
        assert rig.sent == []  # the person is not contacted twice
        assert rig.counter.counts["duplicate"] == 1
    else:
        assert rig.sent == [(intent.intent_id, 2)]
    assert rig.ledger.get_state(intent.intent_id) is IntentState.SENT
