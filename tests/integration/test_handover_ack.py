"""A law firm's acknowledgment of a handover bag through the signed webhook, on PostgreSQL:
stored once as the handover's receipt and shown in the intent's timeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from dunning.cli.intent import intent_report
from dunning.intents import Channel
from dunning.sandbox.twilio_api import TwilioStandIn
from tests.factories import make_intent
from tests.integration.twilio_support import standin
from tests.integration.webhook_support import Hook, claim, start_hook
from tests.services import postgres_schema

__all__ = ["standin"]  # fixture, imported for pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def schema_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest_asyncio.fixture
async def pg_hook(standin: TwilioStandIn, schema_url: str) -> AsyncIterator[Hook]:
    async with start_hook(standin, schema_url) as running:
        yield running


async def test_the_firms_acknowledgment_is_recorded_once(pg_hook: Hook) -> None:
    letter = make_intent(Channel.LETTER, account_id="CN-ACK1")
    claim(pg_hook.ledger, letter)
    ack = {"id": "firm-77", "account_id": "CN-ACK1", "manifest_sha256": "ab" * 32,
           "firm_ref": "SLF-2026-001"}  # fmt: skip
    forged = await pg_hook.post_json("/legal/acknowledgments", ack, secret="not-ours")
    assert forged.status_code == 403
    first = await pg_hook.post_json("/legal/acknowledgments", ack)
    again = await pg_hook.post_json("/legal/acknowledgments", ack)
    assert (first.json(), again.json()) == ({"recorded": True}, {"recorded": False})
    unknown = await pg_hook.post_json("/legal/acknowledgments", {**ack, "account_id": "nope"})
    assert unknown.status_code == 404
    report = intent_report(pg_hook.ledger, letter.intent_id)
    assert report is not None
    acks = [e for e in report["timeline"] if e["kind"] == "handover_acknowledged"]
    assert [a["detail"]["firm_ref"] for a in acks] == ["SLF-2026-001"]
