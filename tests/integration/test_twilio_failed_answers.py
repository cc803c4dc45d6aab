"""A Twilio create answered 201 with status failed, canceled or undelivered is not a send.

The real twilio SDK talks to the stand-in, scripted to answer so (``create_statuses``); the
adapters raise the classified ChannelError, and through the worker pipeline the ledger records a
failed attempt (dead or retried), never ``sent``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from dunning.broker.intent_messages import intent_message
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import build_topology, dead_queue
from dunning.channels.twilio.sms import SmsChannel
from dunning.channels.twilio.voice import VoiceChannel
from dunning.clock import ManualClock
from dunning.errors import PermanentChannelError, TransientChannelError
from dunning.intents import Channel, ContactIntent, Recipient
from dunning.ledger import Ledger
from dunning.ledger.schema import attempts
from dunning.records import IntentState
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.ratelimit.limiter import Unlimited
from tests.factories import T0, make_intent
from tests.integration.twilio_support import CallbackReceiver, receiver, settings_for, standin

__all__ = ["receiver", "standin"]  # fixtures, imported for pytest

PHONE = "+15005550020"


def _intent(channel: Channel = Channel.SMS) -> ContactIntent:
    return make_intent(
        channel, jurisdiction="US", recipient=Recipient(name="Jane Doe", phone=PHONE)
    )


@pytest.mark.parametrize(
    ("status", "code", "error", "label", "suppress"),
    [
        ("failed", 30007, PermanentChannelError, "30007", False),  # carrier filtered
        ("undelivered", 30006, PermanentChannelError, "30006", False),  # landline
        ("canceled", None, PermanentChannelError, "canceled", False),
        ("failed", 30001, TransientChannelError, "30001", False),  # queue overflow
        ("failed", 21610, PermanentChannelError, "21610", True),  # replied STOP
    ],
)
async def test_sms_answered_as_not_sent_raises_the_mapped_error(
    standin: TwilioStandIn,
    receiver: CallbackReceiver,
    status: str,
    code: int | None,
    error: type[Exception],
    label: str,
    suppress: bool,
) -> None:
    standin.behaviour.update({"create_statuses": {PHONE: [status, code]}})
    channel = SmsChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        with pytest.raises(error) as caught:
            await channel.send(_intent(), attempt=1)
    finally:
        await channel.aclose()
    assert type(caught.value) is error
    assert caught.value.provider_code == label  # type: ignore[attr-defined]
    assert getattr(caught.value, "suppress", False) is suppress
    [created] = standin.requests  # Twilio took the request: the answer is what says "not sent"
    assert standin.messages[created.sid]["status"] == status


@pytest.mark.parametrize("status", ["failed", "canceled"])
async def test_call_answered_as_not_placed_is_permanent(
    standin: TwilioStandIn, receiver: CallbackReceiver, status: str
) -> None:
    standin.behaviour.update({"create_statuses": {PHONE: [status, None]}})
    channel = VoiceChannel.from_settings(settings_for(standin, receiver.base_url))
    try:
        with pytest.raises(PermanentChannelError) as caught:
            await channel.send(_intent(Channel.VOICE), attempt=1)
    finally:
        await channel.aclose()
    assert caught.value.provider_code == status


def test_a_script_with_a_status_that_is_a_send_is_refused(standin: TwilioStandIn) -> None:
    with pytest.raises(ValueError, match="create_statuses: queued"):
        standin.behaviour.update({"create_statuses": {PHONE: ["queued", None]}})


@pytest.mark.parametrize(
    ("code", "state", "outcome"),
    [(30007, IntentState.DEAD, "dead"), (30001, IntentState.QUEUED, "retry")],
)
async def test_the_worker_records_a_failed_attempt_not_a_send(
    standin: TwilioStandIn,
    receiver: CallbackReceiver,
    tmp_path: Path,
    code: int,
    state: IntentState,
    outcome: str,
) -> None:
    standin.behaviour.update({"create_statuses": {PHONE: ["failed", code]}})
    settings = settings_for(
        standin, receiver.base_url, retry_delays_s=(3600,), max_attempts=3, shutdown_grace_s=5
    )
    server = MemoryBroker()
    server.declare(build_topology())
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    intent = _intent()  # created at T0, expires two days later: the clock stays at T0
    server.publisher().publish_many([intent_message(intent)])
    counter = OutcomeCounter()
    channel = SmsChannel.from_settings(settings)
    worker = build_worker(
        settings,
        WorkerParts(
            channel=Channel.SMS,
            adapter=channel,
            ledger=ledger,
            clock=ManualClock(T0),
            broker=server.client(),
            limiter=Unlimited(),
            middleware=(counter,),
        ),
        declare=False,
    )
    task = asyncio.create_task(worker.run())
    try:
        await counter.wait_until(lambda: sum(counter.counts.values()) >= 1, 20)
    finally:
        worker.stop()
        assert await task == 0
        await channel.aclose()
    assert counter.counts[outcome] == 1
    assert ledger.get_state(intent.intent_id) is state
    with ledger._engine.connect() as conn:
        [(recorded, provider_code)] = conn.execute(
            select(attempts.c.outcome, attempts.c.provider_code).where(
                attempts.c.intent_id == intent.intent_id
            )
        ).all()
    ledger.close()
    assert (recorded, provider_code) == ("failed", str(code))
    if state is IntentState.DEAD:
        assert server.publisher().get(dead_queue(Channel.SMS)) is not None
