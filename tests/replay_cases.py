"""A send that fails before the provider, dead-lettered and replayed, is not held by the caps.

Written once and run on SQLite (unit) and PostgreSQL (integration): a test module subclasses
:class:`ReplayCapCases` and provides a ``ledger`` fixture (a migrated, empty ledger). The worker
runs on the memory broker with a gate that allows one contact per person a day, the way a
"1 of 1" cap does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, dead_queue
from dunning.channels.base import CallbackChannel, SendResult
from dunning.channels.twilio.http import classify_twilio_error
from dunning.clock import SystemClock
from dunning.errors import TransientChannelError
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.records import ContactHistory, GateDecision, IntentState
from dunning.settings import Settings
from dunning.templates import TemplateStore, template_context
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.dlq import DeadLetterFilter, replay_dead_letters
from dunning.workers.middleware import OutcomeCounter
from tests.factories import make_intent

Send = Callable[[ContactIntent, int], Awaitable[SendResult]]


def one_contact_a_day(
    intent: ContactIntent, history: ContactHistory, now: datetime
) -> GateDecision:
    """A daily cap of one contact per person, as the pack's caps decide it."""
    if history.attempts:
        return GateDecision(
            "defer",
            "cap.daily",
            f"cap reached: {len(history.attempts)} of 1",
            "test-1",
            until=now + timedelta(days=1),
        )
    return GateDecision.allow("test-1")


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Rig:
    def __init__(self, ledger: Ledger, templates: Path) -> None:
        self.server = MemoryBroker()
        self.server.declare(build_topology())
        self.publisher = self.server.publisher()
        self.ledger = ledger
        self.templates = templates
        self.counter = OutcomeCounter()
        self.sent: list[tuple[str, str]] = []
        self.settings = Settings(retry_delays_s=(1,), max_attempts=2, shutdown_grace_s=5)

    def fresh(self) -> ContactIntent:
        now = datetime.now(UTC)
        return make_intent(
            Channel.SMS, created_at=now - timedelta(minutes=1), expires_at=now + timedelta(days=2)
        )

    def publish(self, intent: ContactIntent) -> None:
        self.publisher.publish_many(
            [OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(intent), {})]
        )

    async def render_and_send(self, intent: ContactIntent, attempt: int) -> SendResult:
        """Render the SMS body from the template folder (a missing template is a ConfigError)."""
        store = TemplateStore(self.templates)
        body = store.render(
            intent.template.locale,
            "sms",
            intent.template.name,
            "txt",
            template_context(intent),
        )
        self.sent.append((intent.intent_id, body))
        return SendResult(provider_ref=f"SM{len(self.sent):032d}", status="queued")

    def write_template(self, intent: ContactIntent) -> None:
        folder = self.templates / intent.template.locale / "sms"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{intent.template.name}.txt.j2").write_text("Payment of {{ amount }} is due.")

    async def run(self, send: Send, until: Callable[[Counter[str]], bool]) -> None:
        """Run a worker until ``until(outcome counts of this run)`` holds, then stop it."""
        self.counter = OutcomeCounter()
        parts = WorkerParts(
            channel=Channel.SMS,
            adapter=CallbackChannel(Channel.SMS, send),
            ledger=self.ledger,
            clock=SystemClock(),
            gate=one_contact_a_day,
            broker=self.server.client(),
            middleware=(self.counter,),
        )
        worker = build_worker(self.settings, parts, declare=False)
        task = asyncio.create_task(worker.run())
        try:
            await self.counter.wait_until(lambda: until(self.counter.counts), 20)
        finally:
            worker.stop()
            assert await task == 0

    def replay(self) -> int:
        report = replay_dead_letters(
            self.publisher, self.ledger, DeadLetterFilter(), clock=SystemClock()
        )
        return report.replayed


class ReplayCapCases:
    """Needs a ``ledger`` fixture; ``tmp_path`` holds the template folder."""

    def rig(self, ledger: Ledger, tmp_path: Path) -> Rig:
        (tmp_path / "templates").mkdir()
        return Rig(ledger, tmp_path / "templates")

    async def test_template_error_then_replay_is_sent_not_capped(
        self, ledger: Ledger, tmp_path: Path
    ) -> None:
        rig = self.rig(ledger, tmp_path)
        intent = rig.fresh()
        rig.publish(intent)
        await rig.run(rig.render_and_send, lambda c: c["dead"] == 1)
        assert rig.ledger.get_state(intent.intent_id) is IntentState.DEAD

        rig.write_template(intent)  # the operator fixes the configuration
        assert rig.replay() == 1
        await rig.run(rig.render_and_send, lambda c: c["sent"] + c["deferred"] == 1)
        assert rig.counter.counts["deferred"] == 0
        assert [i for i, _ in rig.sent] == [intent.intent_id]
        assert rig.ledger.get_state(intent.intent_id) is IntentState.SENT

    async def test_connection_refused_then_replay_is_sent_not_capped(
        self, ledger: Ledger, tmp_path: Path
    ) -> None:
        rig = self.rig(ledger, tmp_path)
        port = closed_port()

        async def unreachable(intent: ContactIntent, attempt: int) -> SendResult:
            async with aiohttp.ClientSession() as session:
                try:
                    await session.post(f"http://127.0.0.1:{port}/Messages.json")
                except aiohttp.ClientError as exc:
                    raise classify_twilio_error(exc) from exc
            raise AssertionError("nothing should listen on the closed port")

        intent = rig.fresh()
        rig.write_template(intent)
        rig.publish(intent)
        # Two attempts, both refused: the retry is not held by the cap either.
        await rig.run(unreachable, lambda c: c["dead"] + c["deferred"] == 1)
        counts = rig.counter.counts
        assert (counts["retry"], counts["dead"], counts["deferred"]) == (1, 1, 0)

        assert rig.replay() == 1
        await rig.run(rig.render_and_send, lambda c: c["sent"] + c["deferred"] == 1)
        assert rig.counter.counts["deferred"] == 0
        assert [i for i, _ in rig.sent] == [intent.intent_id]

    async def test_a_timeout_after_the_request_was_written_still_counts(
        self, ledger: Ledger, tmp_path: Path
    ) -> None:
        rig = self.rig(ledger, tmp_path)
        rig.settings = dataclasses.replace(rig.settings, reconcile_after_s=3600)
        first = rig.fresh()
        second = dataclasses.replace(rig.fresh(), person_id=first.person_id, debt_id=first.debt_id)
        rig.write_template(first)

        async def timed_out_then_ok(intent: ContactIntent, attempt: int) -> SendResult:
            if intent.intent_id == first.intent_id:
                raise TransientChannelError("twilio request timed out", ambiguous=True)
            return await rig.render_and_send(intent, attempt)

        rig.publish(first)
        await rig.run(timed_out_then_ok, lambda c: c["in_doubt"] == 1)
        rig.publish(second)
        await rig.run(timed_out_then_ok, lambda c: c["deferred"] == 1)
        assert rig.sent == []
        assert rig.server.queue_depth(dead_queue(Channel.SMS)) == 0
