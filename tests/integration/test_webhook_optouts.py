"""STOP and START texts through the signed webhook: copies change nothing, the latest keyword
from a number decides, and a START lifts only what STOP texts made."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from dunning.intents import Channel, ContactIntent
from dunning.ledger.receipts_store import inbound_messages
from dunning.records import IntentState, Suppression
from dunning.sandbox.twilio_api import TwilioStandIn
from tests.factories import T0, make_intent
from tests.integration.twilio_support import standin
from tests.integration.webhook_support import OUR_NUMBER, Hook, claim, hook

__all__ = ["hook", "standin"]  # fixtures, imported for pytest


def _person_at(hook: Hook, phone: str) -> ContactIntent:
    """A person we texted at ``phone`` (an attempt, so the webhook can place the number)."""
    sent = make_intent()
    sent = dataclasses.replace(sent, recipient=dataclasses.replace(sent.recipient, phone=phone))
    claim(hook.ledger, sent)
    return sent


def _waiting(hook: Hook, sent: ContactIntent, step: str) -> ContactIntent:
    """Another SMS for the same person, queued now."""
    queued = dataclasses.replace(
        make_intent(account_id=sent.account_id, step=step), recipient=sent.recipient
    )
    hook.ledger.record_published([queued], now=T0)
    return queued


async def _text(hook: Hook, sid: str, phone: str, body: str) -> None:
    inbound = {"MessageSid": sid, "From": phone, "To": OUR_NUMBER, "Body": body}
    response = await hook.post_signed("/twilio/inbound", inbound)
    assert response.status_code == 200, response.text


def _live(hook: Hook, person_id: str) -> list[tuple[Channel | None, str, str]]:
    history = hook.ledger.history(person_id, since=T0)
    return sorted((s.channel, s.reason, s.source) for s in history.suppressions)


def _confirmations_to(standin: TwilioStandIn, phone: str) -> int:
    return len([r for r in standin.requests if r.form["To"] == [phone]])


async def test_a_replayed_start_never_lifts_a_later_stop(
    hook: Hook, standin: TwilioStandIn
) -> None:
    phone = "+8613800131001"
    person = _person_at(hook, phone)
    await _text(hook, "SMstopA", phone, "STOP")
    await _text(hook, "SMstartB", phone, "START")
    await _text(hook, "SMstopC", phone, "STOP")
    await _text(hook, "SMstartB", phone, "START")  # Twilio retries B after C
    assert _live(hook, person.person_id) == [(Channel.SMS, "opt_out", "sms_inbound")]
    assert _confirmations_to(standin, phone) == 2  # one for A, one for C
    with hook.ledger._engine.connect() as conn:
        stored = conn.scalars(select(inbound_messages.c.dedupe_key)).all()
    assert sorted(stored) == ["sms:SMstartB", "sms:SMstopA", "sms:SMstopC"]


async def test_a_replayed_stop_never_undoes_a_later_start(
    hook: Hook, standin: TwilioStandIn
) -> None:
    phone = "+8613800131002"
    person = _person_at(hook, phone)
    await _text(hook, "SMstop1", phone, "STOP")
    await _text(hook, "SMstart2", phone, "START")
    queued = _waiting(hook, person, "early.sms.d3")
    await _text(hook, "SMstop1", phone, "STOP")  # a late copy of the first STOP
    assert _live(hook, person.person_id) == []
    assert hook.ledger.get_state(queued.intent_id) is IntentState.QUEUED
    assert _confirmations_to(standin, phone) == 1


async def test_start_lifts_only_the_opt_out_a_stop_text_made(hook: Hook) -> None:
    phone = "+8613800131003"
    person = _person_at(hook, phone)
    book = Suppression(person.person_id, Channel.SMS, "opt_out", "account_flag", T0)
    hook.ledger.add_suppression(book)
    await _text(hook, "SMstop9", phone, "STOP")
    assert _live(hook, person.person_id) == [
        (Channel.SMS, "opt_out", "account_flag"),
        (Channel.SMS, "opt_out", "sms_inbound"),
    ]
    await _text(hook, "SMstart9", phone, "START")
    assert _live(hook, person.person_id) == [(Channel.SMS, "opt_out", "account_flag")]
