"""Calls confirm the right party before the debt is mentioned, and take promises to pay by
keypad; texts take them by reply. Real VoiceChannel sends to the Twilio stand-in, whose keypad
posts signed Gather callbacks to the running webhook; SQLite ledger in tmp_path."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import httpx
from sqlalchemy import select

from dunning.channels.twilio.sms import SmsChannel
from dunning.channels.twilio.voice import VoiceChannel
from dunning.intents import Channel, ContactIntent
from dunning.ledger.receipts_store import inbound_messages
from dunning.producers import Account, Evaluation, evaluate
from dunning.producers.ledger_outcomes import LedgerOutcomes
from dunning.producers.promises import LedgerPromises
from dunning.producers.strategy import load_strategy
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.sandbox.twilio_gather import said
from tests.factories import T0, make_intent
from tests.integration.twilio_support import standin
from tests.integration.webhook_support import CONFIG, Hook, claim, hook

__all__ = ["hook", "standin"]  # fixtures, imported for pytest

ACCOUNT = "US-200417"  # the callee keys 0417
DEBT_WORDS = ("1,234.50", "Example Consumer Finance", "debt", "past due", "amount")


async def _call(hook: Hook, standin: TwilioStandIn, intent: ContactIntent) -> str:
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


def _kinds(hook: Hook) -> list[str]:
    with hook.ledger._engine.connect() as conn:
        return list(conn.execute(select(inbound_messages.c.kind)).scalars())


def _timeline(hook: Hook, intent: ContactIntent) -> list[str]:
    return [e.kind for e in hook.ledger.timeline(intent.intent_id)]


def _next_day(hook: Hook, intent: ContactIntent) -> Evaluation:
    """The account evaluated the day after T0, with the ledger's history and promises."""
    day = T0.date() + timedelta(days=1)
    book = Account(
        account_id=intent.account_id, person_id=intent.person_id, name="Jane Doe",
        phone=intent.recipient.phone, email=None, address=None, timezone=intent.timezone,
        locale=intent.template.locale, jurisdiction=intent.jurisdiction,
        collector_role="first_party", currency=intent.currency, amount_due=intent.amount_due,
        principal=intent.amount_due, due_date=day - timedelta(days=3),
    )  # fmt: skip
    [evaluation] = evaluate(
        [book], load_strategy(CONFIG / "strategy.toml"), as_of=day,
        now=datetime.combine(day, time(14), tzinfo=UTC), outcomes=LedgerOutcomes(hook.ledger),
        promises=LedgerPromises(hook.ledger),
    )  # fmt: skip
    return evaluation


def _discloses_nothing(twiml: str) -> None:
    for word in DEBT_WORDS:
        assert word.lower() not in twiml.lower(), word


async def test_the_opening_names_no_creditor_and_no_debt(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US", account_id=ACCOUNT)
    sid = await _call(hook, standin, intent)
    [created] = [r for r in standin.requests if r.sid == sid]
    opening = created.form["Twiml"][0]
    _discloses_nothing(opening)
    assert "last 4 digits" in " ".join(said(opening))


async def test_wrong_digits_disclose_nothing_and_record_wrong_party(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US", account_id=ACCOUNT)
    sid = await _call(hook, standin, intent)
    answer = await standin.keypad.press(sid, "9999")
    _discloses_nothing(answer)
    assert "<Hangup" in answer
    assert _kinds(hook) == ["wrong_party"]
    assert "wrong_party" in _timeline(hook, intent)


async def test_silence_is_unverified_and_discloses_nothing(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US", account_id=ACCOUNT)
    sid = await _call(hook, standin, intent)
    answer = await standin.keypad.press(sid, "")  # the Gather times out into the Redirect
    _discloses_nothing(answer)
    assert _kinds(hook) == ["unverified"]


async def test_right_party_hears_the_menu_and_keys_a_promise(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US", account_id=ACCOUNT)
    sid = await _call(hook, standin, intent)
    menu = await standin.keypad.press(sid, "0417")
    assert "Example Consumer Finance" in menu  # only now the creditor is named
    assert "Press 3 to promise a payment date." in said(menu)
    prompt = await standin.keypad.press(sid, "3")
    assert "four digits, month and day" in " ".join(said(prompt))
    answer = await standin.keypad.press(sid, "1205")  # T0 is 2026-11-28
    assert "promise to pay by 12/5" in " ".join(said(answer))
    [promise] = hook.ledger.promises_of([ACCOUNT])[ACCOUNT]
    assert (promise.pay_by, promise.source, promise.status) == (date(2026, 12, 5), "voice", "open")
    assert promise.intent_id == intent.intent_id
    assert "promise_made" in _timeline(hook, intent)
    assert _next_day(hook, intent).blocked == "promise_to_pay"


async def test_a_day_beyond_the_limit_is_no_promise(hook: Hook, standin: TwilioStandIn) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US", account_id=ACCOUNT)
    sid = await _call(hook, standin, intent)
    await standin.keypad.press(sid, "0417")
    await standin.keypad.press(sid, "3")
    answer = await standin.keypad.press(sid, "0301")  # more than 30 days ahead
    assert "not valid" in " ".join(said(answer))
    assert hook.ledger.promises_of([ACCOUNT])[ACCOUNT] == []


async def test_an_sms_reply_with_a_day_records_a_promise(
    hook: Hook, standin: TwilioStandIn
) -> None:
    intent = make_intent(Channel.SMS, jurisdiction="CN", account_id="CN-100777")
    await _call(hook, standin, intent)
    reply = {"MessageSid": "SM" + "7" * 32, "From": "+8613800138000", "Body": "承诺 12月3日"}
    response = await hook.post_signed("/twilio/inbound", reply)
    assert response.status_code == 200
    [promise] = hook.ledger.promises_of(["CN-100777"])["CN-100777"]
    assert (promise.pay_by, promise.source) == (date(2026, 12, 3), "sms")
    assert "promise_made" in _timeline(hook, intent)
    assert _next_day(hook, intent).blocked == "promise_to_pay"


async def test_the_stand_in_keypad_answers_over_http(hook: Hook, standin: TwilioStandIn) -> None:
    intent = make_intent(Channel.VOICE, jurisdiction="US", account_id=ACCOUNT)
    sid = await _call(hook, standin, intent)
    async with httpx.AsyncClient() as http:
        silent = await http.post(f"{standin.base_url}/_sandbox/calls/{sid}/digits", data={})
        unknown = await http.post(f"{standin.base_url}/_sandbox/calls/CA0/digits", data={})
    assert silent.status_code == 200
    assert "could not confirm" in " ".join(silent.json()["said"])
    assert unknown.status_code == 404
