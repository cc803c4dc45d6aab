"""The call's right-party check and promises to pay, by keypad and by SMS reply.

``/twilio/identity``: the callee's digits against the account's (dunning/channels/twilio/
voice_ivr.py). Right: the greeting and menu. Wrong: ``wrong_party``; none: ``unverified``;
both are recorded as an inbound keypad event and in the intent's audit, and answered with a
message that says nothing about the debt. ``/twilio/promise``: the day keyed after menu key 3,
recorded as a promise (source ``voice``). An SMS reply such as ``PROMISE 2026-12-10`` records
a promise (source ``sms``) for the account last contacted at that number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from dunning.channels.twilio.voice import verified_twiml
from dunning.channels.twilio.voice_ivr import (
    expected_digits,
    promise_answer_twiml,
    undisclosed_twiml,
)
from dunning.channels_toml import TwilioChannelsConfig
from dunning.clock import Clock
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.receipts_inbound import InboundRecord
from dunning.promise_replies import parse_keypad_day, parse_promise_reply
from dunning.templates import TemplateStore

__all__ = ["HANGUP_TWIML", "IvrService"]

log = structlog.get_logger(__name__)
HANGUP_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


class IvrService:
    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        *,
        config: TwilioChannelsConfig,
        templates: TemplateStore,
        webhook_public_url: str,
    ) -> None:
        self.ledger, self.clock = ledger, clock
        self.config, self.templates = config, templates
        self.webhook_public_url = webhook_public_url

    async def identity(self, params: Mapping[str, str], intent_id: str | None) -> str:
        """TwiML answering the identity prompt (see the module docstring)."""
        intent = None
        if intent_id is not None:
            intent = await asyncio.to_thread(self.ledger.load_intent, intent_id)
        if intent is None:
            return HANGUP_TWIML
        digits = params.get("Digits", "").strip()
        if digits and digits == expected_digits(intent):
            log.info("receipts.right_party", intent_id=intent.intent_id)
            return verified_twiml(
                intent, config=self.config, templates=self.templates,
                webhook_public_url=self.webhook_public_url,
            )  # fmt: skip
        kind = "wrong_party" if digits else "unverified"
        now = self.clock.now()
        record = InboundRecord(
            dedupe_key=f"identity:{params.get('CallSid', '')}"[:128],
            channel=Channel.VOICE,
            kind=kind,
            received_at=now,
            from_phone=params.get("To"),  # the callee of our outbound call
            person_id=intent.person_id,
            intent_id=intent.intent_id,
            keyword="keypad identity",
        )
        await asyncio.to_thread(self.ledger.record_inbound, record)
        await asyncio.to_thread(
            self.ledger.audit, intent.intent_id, kind, now=now, detail={"check": "account_digits"}
        )
        log.info("receipts.identity_not_confirmed", intent_id=intent.intent_id, kind=kind)
        return undisclosed_twiml(intent.template.locale)

    async def keypad_promise(self, params: Mapping[str, str], intent_id: str | None) -> str:
        """TwiML answering the day keyed after menu key 3; a valid day is recorded."""
        intent = None
        if intent_id is not None:
            intent = await asyncio.to_thread(self.ledger.load_intent, intent_id)
        if intent is None:
            return HANGUP_TWIML
        now = self.clock.now()
        day = parse_keypad_day(params.get("Digits", "").strip(), now.date())
        if day is not None:
            await asyncio.to_thread(
                lambda: self.ledger.add_promise(
                    intent.account_id, intent.person_id, pay_by=day, amount=None,
                    source="voice", now=now, intent_id=intent.intent_id,
                )
            )  # fmt: skip
        log.info("receipts.keypad_promise", intent_id=intent.intent_id, valid=day is not None)
        return promise_answer_twiml(intent.template.locale, day)

    async def sms_promise(self, params: Mapping[str, str]) -> bool:
        """Record the promise an SMS reply (From, Body) makes, if it makes one, for the person
        last texted at that number; True when recorded."""
        now = self.clock.now()
        day = parse_promise_reply(params.get("Body", ""), now.date())
        if day is None:
            return False
        people = await asyncio.to_thread(self.ledger.people_for_phone, params.get("From", ""))
        if not people:
            return False
        person_id = people[0][0]
        latest = await asyncio.to_thread(self.ledger.latest_sms_intent, person_id)
        if latest is None:
            return False
        intent_id, account_id = latest
        await asyncio.to_thread(
            lambda: self.ledger.add_promise(
                account_id, person_id, pay_by=day, amount=None, source="sms", now=now,
                intent_id=intent_id,
            )
        )  # fmt: skip
        log.info("receipts.sms_promise", intent_id=intent_id)
        return True
