"""The webhook over a real socket: uvicorn on loopback, callbacks signed by the Twilio stand-in.

Real SmsChannel/VoiceChannel sends go to the stand-in, whose signed status callbacks reach the
webhook at ``webhook_public_url``; forged requests are signed here with the wrong key or URL.
The ledger is SQLite in tmp_path. Nothing is patched.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import (
    RECEIPTS_EXCHANGE,
    Binding,
    QueueSpec,
    Topology,
    build_topology,
)
from dunning.channels.email_message import unsubscribe_token
from dunning.channels.twilio.sms import SmsChannel
from dunning.channels.twilio.voice import VoiceChannel
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.receipts_store import inbound_messages
from dunning.ledger.schema import attempts, receipts
from dunning.receipts.app import create_app
from dunning.receipts.inbound import OPT_OUT_KEYWORDS
from dunning.receipts.server import bind, serving
from dunning.records import DialOutcome, IntentState
from dunning.sandbox.twilio_api import TwilioStandIn
from tests.factories import T0, make_intent
from tests.integration.twilio_support import AUTH_TOKEN, settings_for, standin
from tests.integration.webhook_support import CONFIG, OUR_NUMBER, Hook, claim, hook

__all__ = ["hook", "standin"]  # fixtures, imported for pytest


async def _send(hook: Hook, standin: TwilioStandIn, intent: ContactIntent) -> str:
    """Claim, send through the real channel, record the send, wait for every callback."""
    cls = SmsChannel if intent.channel is Channel.SMS else VoiceChannel
    channel = cls.from_settings(hook.settings)
    attempt = claim(hook.ledger, intent)
    try:
        result = await channel.send(intent, attempt=attempt)
    finally:
        await channel.aclose()
    hook.ledger.record_sent(
        intent.intent_id, attempt, provider_ref=result.provider_ref, status=result.status,
        detail=result.detail, now=T0,
    )  # fmt: skip
    await standin.wait_idle()
    return result.provider_ref


def _receipt_statuses(ledger: Ledger, intent_id: str) -> list[str]:
    return [e.summary for e in ledger.timeline(intent_id) if e.kind == "receipt"]


# --- status callbacks -----------------------------------------------------------------------


async def test_sms_callbacks_signed_by_the_stand_in_move_the_intent_to_delivered(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent()
    await _send(hook, standin, intent)
    assert [r.http_status for r in standin.callbacks.records] == [200, 200]
    assert hook.ledger.get_state(intent.intent_id) is IntentState.DELIVERED
    assert _receipt_statuses(hook.ledger, intent.intent_id) == [
        "sms receipt sent",
        "sms receipt delivered",
    ]


async def test_undelivered_callbacks_make_the_intent_undelivered(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent(jurisdiction="US")
    assert intent.recipient.phone is not None
    standin.behaviour.undelivered_numbers = {intent.recipient.phone: 30003}
    await _send(hook, standin, intent)
    assert hook.ledger.get_state(intent.intent_id) is IntentState.UNDELIVERED


async def test_duplicate_and_out_of_order_callbacks_change_nothing(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent()
    await _send(hook, standin, intent)
    before = hook.count(receipts)
    sent, delivered = standin.callbacks.records
    path = f"/twilio/status?intent_id={intent.intent_id}"
    for record in (delivered, sent, delivered):  # a retry, a late "sent", a retry again
        response = await hook.post_signed(path, record.params)
        assert response.status_code == 200
    assert hook.count(receipts) == before
    assert hook.ledger.get_state(intent.intent_id) is IntentState.DELIVERED


async def test_an_early_callback_is_applied_once_the_send_is_recorded(hook: Hook) -> None:
    intent = make_intent()
    params = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "delivered", "AccountSid": "AC1"}
    response = await hook.post_signed(f"/twilio/status?intent_id={intent.intent_id}", params)
    assert response.status_code == 200
    assert hook.ledger.get_state(intent.intent_id) is None  # the ledger has not seen it yet
    attempt = claim(hook.ledger, intent)
    hook.ledger.record_sent(
        intent.intent_id, attempt, provider_ref=params["MessageSid"], status="queued",
        detail={}, now=T0 + timedelta(seconds=1),
    )  # fmt: skip
    assert hook.ledger.get_state(intent.intent_id) is IntentState.DELIVERED


@pytest.mark.parametrize(
    "forgery", ["wrong_token", "missing", "other_params", "host_header_url", "no_query"]
)
async def test_forged_callbacks_get_403_and_record_nothing(hook: Hook, forgery: str) -> None:
    intent = make_intent()
    claim(hook.ledger, intent)
    path = f"/twilio/status?intent_id={intent.intent_id}"
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}
    if forgery == "missing":
        response = await hook.http.post(f"{hook.url}{path}", data=params)
    elif forgery == "wrong_token":
        response = await hook.post_signed(path, params, token="not-the-token")
    elif forgery == "other_params":
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            f"{hook.settings.webhook_public_url}{path}", {**params, "MessageStatus": "sent"}
        )
        response = await hook.http.post(
            f"{hook.url}{path}", data=params, headers={"X-Twilio-Signature": signature}
        )
    elif forgery == "host_header_url":
        # Signed for the URL the Host header claims, not the configured public one.
        response = await hook.http.post(
            f"{hook.url}{path}",
            data=params,
            headers={
                "Host": "attacker.example",
                "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
                    f"http://attacker.example{path}", params
                ),
            },
        )
    else:
        response = await hook.post_signed(
            path, params, sign_url=f"{hook.settings.webhook_public_url}/twilio/status"
        )
    assert response.status_code == 403
    assert hook.count(receipts) == 0
    assert hook.ledger.get_state(intent.intent_id) is IntentState.SENDING


async def test_behind_a_reverse_proxy_the_public_url_is_verified_not_the_host(
    standin: TwilioStandIn, tmp_path: Path
) -> None:
    public = "https://hooks.example.com"
    sock, local = bind()
    settings = settings_for(standin, public, config_dir=CONFIG, now=T0)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'proxy.db'}")
    try:
        async with (
            serving(create_app(settings, ledger), sock),
            httpx.AsyncClient(timeout=10) as http,
        ):
            proxied = Hook(local, Starlette(), ledger, settings, http)
            params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent"}
            ok = await proxied.post_signed("/twilio/status?intent_id=x", params)
            as_seen = await proxied.post_signed(
                "/twilio/status?intent_id=x", params, sign_url=f"{local}/twilio/status?intent_id=x"
            )
        assert ok.status_code == 200
        assert as_seen.status_code == 403
        assert proxied.count(receipts) == 1
    finally:
        ledger.close()


# --- voice ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "state", "dial"),
    [
        ("+12025550143", IntentState.DELIVERED, DialOutcome.CONVERSATION),
        ("+15005550010", IntentState.DELIVERED, DialOutcome.VOICEMAIL),
        ("+15005550011", IntentState.UNDELIVERED, DialOutcome.BUSY),
        ("+15005550012", IntentState.UNDELIVERED, DialOutcome.NO_ANSWER),
    ],
)
async def test_call_callbacks_set_state_and_dial_outcome(
    hook: Hook, standin: TwilioStandIn, phone: str, state: IntentState, dial: DialOutcome
) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US")
    intent = dataclasses.replace(
        intent, recipient=dataclasses.replace(intent.recipient, phone=phone)
    )
    await _send(hook, standin, intent)
    assert all(r.http_status == 200 for r in standin.callbacks.records)
    assert hook.ledger.get_state(intent.intent_id) is state
    history = hook.ledger.history(intent.person_id, since=T0 - timedelta(days=1))
    assert [a.dial_outcome for a in history.attempts] == [dial]


async def test_amd_for_a_machine_answers_with_the_limited_content_voicemail(
    hook: Hook,
) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US")
    claim(hook.ledger, intent)
    params = {"CallSid": "CA" + "1" * 32, "AnsweredBy": "machine_end_beep"}
    response = await hook.post_signed(f"/twilio/amd?intent_id={intent.intent_id}", params)
    assert response.status_code == 200
    assert "<Say" in response.text
    assert "ECF Customer Services" in response.text
    assert "1,234.50" not in response.text  # no debt details on a voicemail


async def test_keypad_1_says_the_amount_2_requests_a_callback_9_stops_calls(hook: Hook) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US")
    waiting = make_intent(
        Channel.VOICE, jurisdiction="US", account_id=intent.account_id, step="early.voice.d3"
    )
    claim(hook.ledger, intent)
    hook.ledger.record_published([waiting], now=T0)
    path = f"/twilio/gather?intent_id={intent.intent_id}"
    call = {"CallSid": "CA" + "2" * 32, "To": "+12025550143"}
    one = await hook.post_signed(path, {**call, "Digits": "1"})
    assert "1,234.50" in one.text
    two = await hook.post_signed(path, {**call, "Digits": "2"})
    assert "call you back" in two.text
    assert hook.count(inbound_messages, inbound_messages.c.kind == "callback_request") == 1
    nine = await hook.post_signed(path, {**call, "Digits": "9"})
    again = await hook.post_signed(path, {**call, "Digits": "9"})
    assert nine.text.count("<Say") == 1
    assert "stop these calls" in nine.text
    assert again.status_code == 200
    history = hook.ledger.history(intent.person_id, since=T0)
    assert [(s.channel, s.reason, s.source) for s in history.suppressions] == [
        (Channel.VOICE, "opt_out", "keypad")
    ]
    assert hook.ledger.get_state(waiting.intent_id) is IntentState.CANCELLED


# --- inbound SMS ----------------------------------------------------------------------------


def _person_at(hook: Hook, phone: str) -> tuple[ContactIntent, ContactIntent]:
    """A person we texted at ``phone`` (an attempt), with a second SMS still queued."""
    sent = make_intent()
    sent = dataclasses.replace(sent, recipient=dataclasses.replace(sent.recipient, phone=phone))
    queued = dataclasses.replace(
        make_intent(account_id=sent.account_id, step="early.sms.d3"), recipient=sent.recipient
    )
    claim(hook.ledger, sent)
    hook.ledger.record_published([queued], now=T0)
    return sent, queued


def _confirmations_to(standin: TwilioStandIn, phone: str) -> list[str]:
    return [r.form["Body"][0] for r in standin.requests if r.form["To"] == [phone]]


async def test_every_keyword_suppresses_cancels_and_confirms_exactly_once(
    hook: Hook, standin: TwilioStandIn
) -> None:
    for index, keyword in enumerate(sorted(OPT_OUT_KEYWORDS)):
        phone = f"+861380013{index:04d}"
        sent, queued = _person_at(hook, phone)
        inbound = {
            "MessageSid": f"SM{index:032d}",
            "From": phone,
            "To": OUR_NUMBER,
            "Body": f"  {keyword.lower()}! ",
        }
        first = await hook.post_signed("/twilio/inbound", inbound)
        retry = await hook.post_signed("/twilio/inbound", inbound)
        assert (first.status_code, retry.status_code) == (200, 200), keyword
        assert "<Message" not in first.text  # the confirmation goes through the API, once
        history = hook.ledger.history(sent.person_id, since=T0)
        assert [(s.channel, s.reason) for s in history.suppressions] == [
            (Channel.SMS, "opt_out")
        ], keyword
        assert hook.ledger.get_state(queued.intent_id) is IntentState.CANCELLED
        [confirmation] = _confirmations_to(standin, phone)
        assert confirmation.startswith("【XX消费金融】")
        assert "退订" in confirmation
        assert "1,234.50" not in confirmation


async def test_start_resubscribes_and_sends_nothing(hook: Hook, standin: TwilioStandIn) -> None:
    phone = "+8613800130099"
    sent, _ = _person_at(hook, phone)
    await hook.post_signed(
        "/twilio/inbound", {"MessageSid": "SMa1", "From": phone, "To": OUR_NUMBER, "Body": "STOP"}
    )
    await hook.post_signed(
        "/twilio/inbound", {"MessageSid": "SMa2", "From": phone, "To": OUR_NUMBER, "Body": "start"}
    )
    assert hook.ledger.history(sent.person_id, since=T0).suppressions == ()
    assert len(_confirmations_to(standin, phone)) == 1


@pytest.mark.parametrize(
    ("body", "flagged"),
    [("stop calling me at work", True), ("STOPP", False), ("I paid yesterday", False)],
)
async def test_other_messages_are_stored_for_an_agent_and_opt_nobody_out(
    hook: Hook, standin: TwilioStandIn, body: str, flagged: bool
) -> None:
    phone = "+8613800130098"
    sent, queued = _person_at(hook, phone)
    inbound = {"MessageSid": "SMb1", "From": phone, "To": OUR_NUMBER, "Body": body}
    assert (await hook.post_signed("/twilio/inbound", inbound)).status_code == 200
    assert hook.ledger.history(sent.person_id, since=T0).suppressions == ()
    assert hook.ledger.get_state(queued.intent_id) is IntentState.QUEUED
    assert _confirmations_to(standin, phone) == []
    with hook.ledger._engine.connect() as conn:
        row = conn.execute(select(inbound_messages)).one()
    assert (row.kind, row.person_id, row.possible_opt_out) == ("agent", sent.person_id, flagged)


async def test_a_stop_from_an_unknown_number_is_still_confirmed_once(
    hook: Hook, standin: TwilioStandIn
) -> None:
    phone = "+8613800130097"
    inbound = {"MessageSid": "SMc1", "From": phone, "To": OUR_NUMBER, "Body": "退订"}
    for _ in range(3):
        assert (await hook.post_signed("/twilio/inbound", inbound)).status_code == 200
    [confirmation] = _confirmations_to(standin, phone)
    assert "退订" in confirmation


async def test_a_failed_confirmation_answers_503_and_the_retry_sends_it_once(
    hook: Hook, standin: TwilioStandIn
) -> None:
    phone = "+8613800130096"
    sent, _ = _person_at(hook, phone)
    inbound = {"MessageSid": "SMd1", "From": phone, "To": OUR_NUMBER, "Body": "TD"}
    standin.behaviour.rate_500 = 1.0
    failed = await hook.post_signed("/twilio/inbound", inbound)
    assert failed.status_code == 503
    # The opt-out itself is recorded even though the confirmation could not go out.
    assert len(hook.ledger.history(sent.person_id, since=T0).suppressions) == 1
    assert _confirmations_to(standin, phone) == []
    standin.behaviour.rate_500 = 0.0
    for _ in range(2):
        assert (await hook.post_signed("/twilio/inbound", inbound)).status_code == 200
    assert len(_confirmations_to(standin, phone)) == 1


# --- email and letter events ----------------------------------------------------------------


async def test_email_events_are_hmac_signed_and_complaints_suppress(hook: Hook) -> None:
    intent = make_intent(Channel.EMAIL)
    attempt = claim(hook.ledger, intent)
    ref = f"<{intent.intent_id}@mail.example-finance.com>"
    hook.ledger.record_sent(intent.intent_id, attempt, provider_ref=ref, status="accepted",
                            detail={}, now=T0)  # fmt: skip
    event = {"message_id": ref, "intent_id": intent.intent_id, "event": "delivered"}
    forged = await hook.post_json("/email/events", event, secret="wrong")
    assert forged.status_code == 403
    assert hook.count(receipts) == 0
    response = await hook.post_json(
        "/email/events", {"events": [event, {**event, "event": "complained"}]}
    )
    assert response.json() == {"received": 2, "outcomes": ["applied", "applied"]}
    assert hook.ledger.get_state(intent.intent_id) is IntentState.DELIVERED
    [suppression] = hook.ledger.history(intent.person_id, since=T0).suppressions
    assert (suppression.channel, suppression.reason) == (Channel.EMAIL, "complaint")
    bad = await hook.post_json("/email/events", {"events": [{"event": "delivered"}]})
    assert bad.status_code == 400


async def test_letter_events_move_forward_only(hook: Hook) -> None:
    intent = make_intent(Channel.LETTER)
    attempt = claim(hook.ledger, intent)
    ref = f"{intent.intent_id}.pdf"
    hook.ledger.record_sent(intent.intent_id, attempt, provider_ref=ref, status="dispatched",
                            detail={}, now=T0)  # fmt: skip
    for event in ("mailed", "printed", "mailed"):
        response = await hook.post_json("/letters/events", {"file": ref, "event": event})
        assert response.status_code == 200
    assert hook.ledger.get_state(intent.intent_id) is IntentState.DELIVERED
    assert hook.count(receipts) == 2  # the second "mailed" was a duplicate


async def test_one_click_unsubscribe_needs_the_token(hook: Hook) -> None:
    intent = make_intent(Channel.EMAIL)
    claim(hook.ledger, intent)
    token = unsubscribe_token(hook.settings.unsubscribe_secret, intent.intent_id)
    base = f"{hook.url}/email/unsubscribe?intent_id={intent.intent_id}"
    assert (await hook.http.post(f"{base}&token=bad")).status_code == 403
    # The vendor-signature key does not make unsubscribe tokens: a leak of one is not both.
    vendor_keyed = unsubscribe_token(hook.settings.webhook_secret, intent.intent_id)
    assert (await hook.http.post(f"{base}&token={vendor_keyed}")).status_code == 403
    assert (await hook.http.get(f"{base}&token={token}")).status_code == 200
    assert hook.ledger.history(intent.person_id, since=T0).suppressions == ()
    done = await hook.http.post(f"{base}&token={token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    [suppression] = hook.ledger.history(intent.person_id, since=T0).suppressions
    assert suppression.channel is Channel.EMAIL


async def test_healthz(hook: Hook) -> None:
    response = await hook.http.get(f"{hook.url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert hook.count(attempts) == 0


# --- publishing -----------------------------------------------------------------------------


async def test_receipts_are_published_by_channel_and_status_once(
    standin: TwilioStandIn, tmp_path: Path
) -> None:
    broker = MemoryBroker()
    publisher = broker.publisher()
    base = build_topology(channels=[Channel.SMS])
    tap = QueueSpec("test.receipts", {}, (Binding(RECEIPTS_EXCHANGE, "sms.*"),))
    publisher.declare(Topology(base.exchanges, (*base.queues, tap)))
    sock, url = bind()
    settings = settings_for(standin, url, config_dir=CONFIG, now=T0)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'pub.db'}")
    app = create_app(settings, ledger, publisher)
    try:
        async with serving(app, sock), httpx.AsyncClient(timeout=10) as http:
            published = Hook(url, app, ledger, settings, http)
            intent = make_intent()
            await _send(published, standin, intent)
            await published.post_signed(  # a retried callback: recorded and published once
                f"/twilio/status?intent_id={intent.intent_id}", standin.callbacks.records[-1].params
            )
            await app.state.receipts.drain()
    finally:
        ledger.close()
    messages = []
    while (delivery := publisher.get("test.receipts")) is not None:
        messages.append((delivery.routing_key, json.loads(delivery.body)))
        publisher.ack(delivery)
    assert [key for key, _ in messages] == ["sms.sent", "sms.delivered"]
    delivered = messages[-1][1]
    assert delivered["intent_id"] == intent.intent_id
    assert delivered["state"] == "delivered"
    assert delivered["final"] is True
