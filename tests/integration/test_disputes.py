"""Disputes end to end on PostgreSQL: a 异议 texted back to the webhook stops a running SMS
worker from sending anything more about that debt, cancels what was queued, leaves the person's
other debts alone, and shows in the intent timeline and the audit; a recorded verification
lifts the hold. Email replies, the dispute link and a portal's signed webhook open holds too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology
from dunning.channels.twilio.base import twilio_client
from dunning.channels.twilio.sms import SmsChannel
from dunning.channels_toml import load_twilio_config
from dunning.cli.intent import intent_report
from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger.schema import audit
from dunning.receipts.disputes import dispute_token
from dunning.records import IntentState
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.templates import TemplateStore
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter, OutcomeLog
from tests.factories import make_intent
from tests.integration.twilio_support import standin
from tests.integration.webhook_support import CONFIG, OUR_NUMBER, Hook, claim, start_hook
from tests.services import postgres_schema

__all__ = ["standin"]  # fixture, imported for pytest

pytestmark = pytest.mark.integration

PHONE = "+8613800139001"


@pytest.fixture
def schema_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest_asyncio.fixture
async def pg_hook(standin: TwilioStandIn, schema_url: str) -> AsyncIterator[Hook]:
    async with start_hook(standin, schema_url) as running:
        yield running


def _sms(account_id: str, step: str, person_id: str) -> ContactIntent:
    base = make_intent(Channel.SMS, account_id=account_id, step=step)
    recipient = dataclasses.replace(base.recipient, phone=PHONE)
    return dataclasses.replace(base, person_id=person_id, recipient=recipient)


def _message(intent: ContactIntent) -> OutboundMessage:
    return OutboundMessage(
        INTENTS_EXCHANGE, intent.channel.value, encode_intent(intent), {}, intent.intent_id
    )


def _texts_to(standin: TwilioStandIn, phone: str) -> int:
    return len([r for r in standin.requests if r.form["To"] == [phone]])


def _audit_events(hook: Hook) -> list[tuple[str | None, str, str | None]]:
    with hook.ledger._engine.connect() as conn:
        rows = conn.execute(select(audit.c.intent_id, audit.c.event, audit.c.rule_id)).all()
    return [(r.intent_id, r.event, r.rule_id) for r in rows]


async def test_a_dispute_reply_stops_the_running_worker_for_that_debt_only(
    pg_hook: Hook, standin: TwilioStandIn, tmp_path: Path
) -> None:
    person = "P-dispute-1"
    first = _sms("CN-D1", "early.sms.d1", person)
    after = _sms("CN-D1", "early.sms.d3", person)  # published after the dispute
    queued = _sms("CN-D1", "early.call.d1", person)  # queued before the dispute
    other = _sms("CN-D2", "early.sms.d1", person)  # the same person's other debt
    assert len({first.debt_id, after.debt_id, queued.debt_id}) == 1

    server = MemoryBroker()
    server.declare(build_topology())
    counter = OutcomeCounter()
    settings = pg_hook.settings
    client, http = twilio_client(settings)
    adapter = SmsChannel(
        client=client, http=http, config=load_twilio_config(CONFIG),
        templates=TemplateStore(CONFIG / "templates"), webhook_public_url=pg_hook.url,
    )  # fmt: skip
    gate = ComplianceGate(load_packs(CONFIG / "compliance.toml"), jitter_s=0)
    worker = build_worker(
        settings,
        WorkerParts(
            channel=Channel.SMS, adapter=adapter, ledger=pg_hook.ledger, clock=settings.clock(),
            gate=gate.decide, broker=server.client(), middleware=(OutcomeLog(), counter),
        ),
        declare=False,
    )  # fmt: skip
    task = asyncio.create_task(worker.run())
    publisher = server.publisher()
    try:
        pg_hook.ledger.record_published([first], now=settings.clock().now())
        publisher.publish_many([_message(first)])
        await counter.wait_until(lambda: counter.counts["sent"] >= 1, 30)
        assert _texts_to(standin, PHONE) == 1

        pg_hook.ledger.record_published([queued], now=settings.clock().now())
        inbound = {
            "MessageSid": "SMdispute1",
            "From": PHONE,
            "To": OUR_NUMBER,
            "Body": "我有异议。",
        }
        answer = await pg_hook.post_signed("/twilio/inbound", inbound)
        assert answer.status_code == 200, answer.text
        assert pg_hook.ledger.get_state(queued.intent_id) is IntentState.CANCELLED

        for intent in (after, other):
            pg_hook.ledger.record_published([intent], now=settings.clock().now())
        publisher.publish_many([_message(queued), _message(after), _message(other)])
        await counter.wait_until(
            lambda: counter.counts["sent"] >= 2 and counter.counts["suppressed"] >= 1, 30
        )
        await counter.wait_until(lambda: sum(counter.counts.values()) >= 4, 30)
    finally:
        worker.stop()
        await task
        await adapter.aclose()

    assert _texts_to(standin, PHONE) == 2  # the first text and the other debt's, nothing else
    assert pg_hook.ledger.get_state(after.intent_id) is IntentState.SUPPRESSED
    assert pg_hook.ledger.get_state(other.intent_id) is IntentState.SENT
    assert pg_hook.ledger.get_state(queued.intent_id) is IntentState.CANCELLED
    events = _audit_events(pg_hook)
    assert (first.intent_id, "dispute_opened", "CN.dispute.objection") in events
    assert (queued.intent_id, "cancelled", "CN.dispute.objection") in events

    # A retried webhook changes nothing.
    again = await pg_hook.post_signed("/twilio/inbound", inbound)
    assert again.status_code == 200
    assert [e for e in _audit_events(pg_hook) if e[1] == "dispute_opened"] == [
        (first.intent_id, "dispute_opened", "CN.dispute.objection")
    ]

    report = intent_report(pg_hook.ledger, first.intent_id)
    assert report is not None
    kinds = [e["kind"] for e in report["timeline"]]
    assert "dispute_opened" in kinds

    document = tmp_path / "statement.pdf"
    document.write_bytes(b"%PDF-1.4 statement of account\n")
    verified = await pg_hook.app.state.disputes.verify("CN-D1", document, tmp_path / "outbox")
    assert verified.lifted == 1
    history = pg_hook.ledger.history(person, since=settings.clock().now())
    assert [s.reason for s in history.suppressions] == []
    manifest = json.loads(
        next((tmp_path / "outbox" / "verifications").glob("*.json")).read_text("utf-8")
    )
    assert manifest["debt_id"] == first.debt_id
    assert len(manifest["sha256"]) == 64
    report = intent_report(pg_hook.ledger, first.intent_id)
    assert report is not None
    verified_events = [e for e in report["timeline"] if e["kind"] == "dispute_verified"]
    assert verified_events[0]["detail"]["sha256"] == manifest["sha256"]


async def test_email_reply_link_and_portal_each_open_a_hold(pg_hook: Hook) -> None:
    mailed = make_intent(Channel.EMAIL, jurisdiction="US", account_id="US-E1")
    linked = make_intent(Channel.EMAIL, jurisdiction="US", account_id="US-L1")
    portal = make_intent(Channel.EMAIL, jurisdiction="US", account_id="US-P1")
    for intent in (mailed, linked, portal):
        claim(pg_hook.ledger, intent)

    chatter = {"id": "m-0", "intent_id": mailed.intent_id, "text": "When is it due?"}
    answer = await pg_hook.post_json("/email/inbound", chatter)
    assert answer.json() == {"dispute": False}
    overview = pg_hook.ledger.intent_overview(mailed.intent_id)
    assert overview is not None
    assert [(m["channel"], m["kind"]) for m in overview["inbound"]] == [("email", "agent")]
    reply = {
        "id": "m-1", "intent_id": mailed.intent_id,
        "text": "Dispute\n\nOn Mon, 2 Nov 2026, Collections wrote:\n> pay now",
    }  # fmt: skip
    answer = await pg_hook.post_json("/email/inbound", reply)
    assert answer.json() == {"dispute": True, "rule_id": "US.dispute.1006.38"}

    secret = pg_hook.settings.unsubscribe_secret
    link = f"/disputes/link?intent_id={linked.intent_id}&token="
    forged = await pg_hook.http.post(f"{pg_hook.url}{link}{'0' * 32}")
    assert forged.status_code == 403
    shown = await pg_hook.http.get(f"{pg_hook.url}{link}{dispute_token(secret, linked.intent_id)}")
    assert shown.status_code == 200
    assert pg_hook.ledger.open_disputes(linked.debt_id) == []
    posted = await pg_hook.http.post(
        f"{pg_hook.url}{link}{dispute_token(secret, linked.intent_id)}"
    )
    assert posted.status_code == 200

    unsigned = await pg_hook.post_json("/disputes/portal", {"id": "p-1"}, secret="wrong")
    assert unsigned.status_code == 403
    payload = {"id": "p-1", "account_id": "US-P1", "amount": "120.00", "text": "wrong amount"}
    answer = await pg_hook.post_json("/disputes/portal", payload)
    assert answer.json() == {"fresh": True, "rule_id": "US.dispute.1006.38", "cancelled": 0}
    unknown = await pg_hook.post_json("/disputes/portal", {**payload, "account_id": "nope"})
    assert unknown.status_code == 404

    sources = {
        intent.debt_id: [s.source for s in pg_hook.ledger.open_disputes(intent.debt_id)]
        for intent in (mailed, linked, portal)
    }
    assert sources == {
        mailed.debt_id: ["email_inbound"],
        linked.debt_id: ["dispute_link"],
        portal.debt_id: ["portal"],
    }
