"""Opt-outs and everything else people send back: inbound SMS, keypad choices, unsubscribe links.

An opt-out records the suppression for the person at once, cancels that person's intents on the
channel that are not yet sent, and owes one confirmation. A STOP or START text is stored and
applied in one transaction, and only when it is the first sight of its MessageSid and the latest
keyword from its number (:mod:`dunning.ledger.receipts_inbound`). For SMS the confirmation is sent
through the Messages API (not as TwiML in the webhook's answer) under a claim in the ledger
keyed by the inbound MessageSid: a retried webhook finds the claim taken and sends nothing. On
a call, keypad 9's confirmation is the spoken acknowledgement of that call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

import aiohttp
import structlog
from twilio.base.exceptions import TwilioException

from dunning.channels.twilio.base import twilio_client
from dunning.channels.twilio.http import DunningTwilioHttpClient, classify_twilio_error
from dunning.channels.twilio.voice import gather_twiml
from dunning.channels_toml import Institution, TwilioChannelsConfig
from dunning.clock import Clock
from dunning.errors import ConfigError, DecodeError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.receipts_inbound import InboundRecord, KeywordOutcome
from dunning.ledger.schema import attempts, inbound_messages
from dunning.receipts.events import checked_text, column_length
from dunning.receipts.inbound import InboundDecision, classify_inbound, confirmation_text
from dunning.records import Suppression
from dunning.settings import Settings
from dunning.templates import TemplateStore

__all__ = ["ConfirmationSender", "OptOutService", "TwilioConfirmations"]

log = structlog.get_logger(__name__)

OPT_OUT_REASON = "opt_out"
DEDUPE_KEY_MAX = column_length(inbound_messages.c.dedupe_key)
PHONE_MAX = column_length(attempts.c.phone)


class ConfirmationSender(Protocol):
    async def send_sms(self, *, to: str, sender: Mapping[str, str], body: str) -> str:
        """Send one SMS; returns its provider ref; raises ChannelError."""
        ...

    async def aclose(self) -> None: ...


class TwilioConfirmations:
    """Sends confirmations through the twilio SDK on our HTTP client (``twilio_api_base``)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None
        self._http: DunningTwilioHttpClient | None = None

    async def send_sms(self, *, to: str, sender: Mapping[str, str], body: str) -> str:
        if self._client is None:
            self._client, self._http = twilio_client(self._settings)
        try:
            message = await self._client.messages.create_async(to=to, body=body, **sender)
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise classify_twilio_error(exc) from exc
        return str(message.sid)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


@dataclass(eq=False)  # a service: equal only to itself
class OptOutService:
    """Inbound SMS, keypad choices and unsubscribe clicks, recorded in ``ledger``."""

    ledger: Ledger
    clock: Clock
    _: KW_ONLY
    config: TwilioChannelsConfig
    templates: TemplateStore
    confirmations: ConfirmationSender

    # --- inbound SMS --------------------------------------------------------------------------

    async def inbound_sms(self, params: Mapping[str, str]) -> InboundDecision:
        """Handle one inbound SMS (MessageSid, From, To, Body); returns what it was taken for.

        Raises ChannelError when the owed confirmation could not be sent (a retry may send it),
        DecodeError when MessageSid or From is missing.
        """
        sid, phone = params.get("MessageSid", ""), params.get("From", "")
        body = params.get("Body", "")
        if not sid or not phone:
            raise DecodeError("inbound message without MessageSid or From")
        dedupe_key = checked_text(f"sms:{sid}", "MessageSid", DEDUPE_KEY_MAX)
        checked_text(phone, "From", PHONE_MAX)
        to_phone = params.get("To")
        if to_phone is not None:
            checked_text(to_phone, "To", PHONE_MAX)
        decision = classify_inbound(body)
        people = await asyncio.to_thread(self.ledger.people_for_phone, phone)
        record = InboundRecord(
            dedupe_key=dedupe_key,
            channel=Channel.SMS,
            kind=decision.kind,
            received_at=self.clock.now(),
            from_phone=phone,
            to_phone=to_phone,
            person_id=people[0][0] if people else None,
            body=body,
            keyword=decision.keyword,
            possible_opt_out=decision.possible_opt_out,
            confirmation="pending" if decision.kind == "opt_out" else None,
        )
        if decision.kind in ("agent", "dispute"):  # a dispute with no known debt: an agent
            outcome = KeywordOutcome(
                fresh=await asyncio.to_thread(self.ledger.record_inbound, record), applied=False
            )
        else:
            # Every person we reached at this number: it is the number that said stop (or start).
            person_ids = [person_id for person_id, _ in people]
            outcome = await asyncio.to_thread(self.ledger.record_keyword, record, person_ids)
        log.info(
            "receipts.inbound_sms",
            kind=decision.kind,
            keyword=decision.keyword,
            possible_opt_out=decision.possible_opt_out,
            people=len(people),
            duplicate=not outcome.fresh,
            applied=outcome.applied,  # False for a copy, or a keyword superseded by a later one
            changed=outcome.changed,
            cancelled=len(outcome.cancelled),
        )
        if decision.kind == "opt_out":
            # Owed once per STOP: a retry after a failed send claims it again (claim_confirmation).
            jurisdiction = people[0][1] if people else None
            await self._confirm(record, jurisdiction, decision.locale_hint)
        return decision

    async def _opt_out(self, person_id: str, channel: Channel, *, source: str) -> list[str]:
        now = self.clock.now()
        suppression = Suppression(person_id, channel, OPT_OUT_REASON, source, now)
        await asyncio.to_thread(self.ledger.add_suppression, suppression)
        cancelled = await asyncio.to_thread(
            self.ledger.cancel_queued,
            person_id,
            channel,
            reason=f"{OPT_OUT_REASON} ({source})",
            now=now,
        )
        log.info("receipts.opted_out", channel=channel.value, source=source, cancelled=cancelled)
        return cancelled

    async def _confirm(
        self, record: InboundRecord, jurisdiction: str | None, locale_hint: str | None
    ) -> None:
        if not await asyncio.to_thread(self.ledger.claim_confirmation, record.dedupe_key):
            return  # sent (or being sent) for an earlier delivery of this webhook
        institution = self._institution(jurisdiction, locale_hint)
        # A known person hears their institution's language; a stranger the keyword's.
        locale = institution.locale if jurisdiction else (locale_hint or institution.locale)
        sender = self.config.sender("sms", institution.jurisdiction)
        origin = (
            {"messaging_service_sid": sender.messaging_service_sid}
            if sender.messaging_service_sid
            else {"from_": record.to_phone or sender.from_number or ""}
        )
        text = confirmation_text(locale, institution.sms_prefix)
        try:
            ref = await self.confirmations.send_sms(
                to=record.from_phone or "", sender=origin, body=text
            )
        except BaseException:
            await asyncio.to_thread(
                self.ledger.finish_confirmation, record.dedupe_key, provider_ref=None
            )
            raise
        await asyncio.to_thread(
            self.ledger.finish_confirmation, record.dedupe_key, provider_ref=ref
        )
        log.info("receipts.opt_out_confirmed", provider_ref=ref)

    def _institution(self, jurisdiction: str | None, locale_hint: str | None) -> Institution:
        """The person's institution; for a stranger, one writing in the keyword's language."""
        known = list(self.config.institutions.values())
        order = [jurisdiction] if jurisdiction else []
        order += [i.jurisdiction for i in known if locale_hint and i.locale == locale_hint]
        order += [i.jurisdiction for i in known]
        for candidate in order:
            try:
                return self.config.institution(candidate)
            except ConfigError:
                continue
        raise ConfigError("channels.toml: no [institution.*] section to confirm an opt-out")

    # --- keypad -------------------------------------------------------------------------------

    async def gather(self, params: Mapping[str, str], intent_id: str | None) -> str:
        """TwiML answering a menu choice: 1 amount, 2 callback request, 9 stop calls."""
        digits = params.get("Digits", "").strip()
        call_sid = params.get("CallSid", "")
        checked_text(f"gather:{call_sid}:{digits}", "CallSid and Digits", DEDUPE_KEY_MAX)
        callee = params.get("To")
        if callee is not None:
            checked_text(callee, "To", PHONE_MAX)
        intent = None
        if intent_id is not None:
            intent = await asyncio.to_thread(self.ledger.load_intent, intent_id)
        if intent is None:
            return '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
        if digits in {"2", "9"}:
            kind = "callback_request" if digits == "2" else "opt_out"
            record = InboundRecord(
                dedupe_key=f"gather:{call_sid}:{digits}",
                channel=Channel.VOICE,
                kind=kind,
                received_at=self.clock.now(),
                from_phone=callee,  # the debtor is the callee of our outbound call
                person_id=intent.person_id,
                intent_id=intent.intent_id,
                keyword=f"keypad {digits}",
                possible_opt_out=digits == "9",
            )
            await asyncio.to_thread(self.ledger.record_inbound, record)
            if digits == "9":
                await self._opt_out(intent.person_id, Channel.VOICE, source="keypad")
        return gather_twiml(intent, digits, config=self.config, templates=self.templates)

    # --- email unsubscribe --------------------------------------------------------------------

    async def email_unsubscribe(self, intent_id: str) -> bool:
        """One-click unsubscribe for the person of ``intent_id``; False for an unknown intent."""
        intent = await asyncio.to_thread(self.ledger.load_intent, intent_id)
        if intent is None:
            return False
        await self._opt_out(intent.person_id, Channel.EMAIL, source="email_unsubscribe")
        return True
