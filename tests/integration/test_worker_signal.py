"""A real `dunning worker sms` process, stopped with SIGTERM while sends are in flight.

Every message must end either processed and acked (recorded as sent, one provider request) or
back on the queue untouched; the process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from dunning.broker.base import OutboundMessage
from dunning.broker.rabbitmq_sync import RabbitPublisher
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, work_queue
from dunning.intents import Channel, encode_intent
from dunning.ledger import Ledger
from dunning.records import IntentState
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.sandbox.twilio_behaviour import StandInBehaviour
from tests.factories import make_intent
from tests.services import rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.integration

ACCOUNT_SID = "AC" + "7" * 32
TOKEN = "signal-test-token"
# 11:00 in Shanghai: inside the CN contact window whatever the machine's clock says.
DRILL_NOW = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
INTENTS = 60


@pytest_asyncio.fixture
async def stand_in() -> AsyncIterator[TwilioStandIn]:
    behaviour = StandInBehaviour(response_delay_ms=250, drop_callback_rate=1.0)
    async with TwilioStandIn(ACCOUNT_SID, TOKEN, behaviour=behaviour) as server:
        yield server


async def _wait(predicate: Callable[[], bool], timeout_s: float) -> None:
    # The condition is driven by another process; there is no event to wait on, so poll it.
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_sigterm_drains_in_flight_sends_and_exits_zero(
    stand_in: TwilioStandIn, tmp_path: Path
) -> None:
    url = rabbitmq_vhost_url("dunning-signal")
    reset_rabbitmq_topology(url)
    admin = RabbitPublisher(url)
    admin.declare(build_topology())
    intents = [
        make_intent(
            Channel.SMS,
            created_at=DRILL_NOW - timedelta(minutes=1),
            expires_at=DRILL_NOW + timedelta(days=1),
        )
        for _ in range(INTENTS)
    ]
    admin.publish_many(
        OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(i), {}, i.intent_id) for i in intents
    )
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")},
        "DUNNING_BROKER_URL": url,
        "DUNNING_DATABASE_URL": database,
        "DUNNING_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "DUNNING_TWILIO_AUTH_TOKEN": TOKEN,
        "DUNNING_TWILIO_API_BASE": stand_in.base_url,
        "DUNNING_NOW": DRILL_NOW.isoformat(),
        "DUNNING_MAX_IN_FLIGHT": "8",
        "DUNNING_PREFETCH": "20",
        "DUNNING_LOG_FORMAT": "json",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dunning", "worker", "sms",
        env=env, cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        # Stop while sends are in flight: some requests done, the queue far from empty.
        await _wait(lambda: len(stand_in.requests) >= 10, timeout_s=60)
        worker.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
    finally:
        if worker.returncode is None:
            worker.kill()
    assert worker.returncode == 0, output.decode(errors="replace")[-3000:]

    ledger = Ledger.open(database)
    states = [ledger.get_state(i.intent_id) for i in intents]
    ledger.close()
    sent = sum(1 for s in states if s is IntentState.SENT)
    back_on_queue = admin.queue_depth(work_queue(Channel.SMS))
    admin.close()

    assert IntentState.SENDING not in states  # nothing abandoned half-way
    assert len(stand_in.requests) == sent  # every provider request was recorded...
    assert max(stand_in.creates_per_intent().values()) == 1  # ...once
    assert sent + back_on_queue == INTENTS  # the rest is back on the queue, none lost
    assert 10 <= sent < INTENTS
