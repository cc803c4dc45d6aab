"""Voice calls through the twilio Calls API, with inline TwiML and answering-machine detection.

The call opens with the right-party check (dunning/channels/twilio/voice_ivr.py): only once the
callee keyed the account's digits does the webhook serve :func:`verified_twiml`, which greets
the debtor in the intent's locale and offers a one-digit menu (1 hear the amount and how to pay,
2 be called back, 3 promise a payment date, 9 stop calls) whose answer is posted to
``/twilio/gather``. Detection runs asynchronously (``DetectMessageEnd``); when Twilio reports a
machine, the webhook serves :func:`voicemail_twiml`, which is rendered from the ``voicemail``
template part with only the limited-content fields (business name that does not reveal debt
collection, a contact name, a callback number): any other variable fails the render.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog
from twilio.base.exceptions import TwilioException
from twilio.twiml.voice_response import VoiceResponse

from dunning.channels.base import SendResult
from dunning.channels.twilio.base import TwilioChannel, worst_case_intent
from dunning.channels.twilio.voice_ivr import identity_twiml
from dunning.channels.twilio.voice_ivr import text as ivr_text
from dunning.channels_toml import TwilioChannelsConfig
from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import Channel, ContactIntent
from dunning.records import DialOutcome
from dunning.templates import TemplateStore, template_context

__all__ = [
    "MAX_TWIML_CHARS",
    "VoiceChannel",
    "call_twiml",
    "dial_outcome_from_status",
    "gather_twiml",
    "verified_twiml",
    "voicemail_twiml",
]

log = structlog.get_logger(__name__)

MAX_TWIML_CHARS = 4000  # Twilio's limit for the Twiml parameter
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
_ACKS = {
    "zh-CN": {
        "2": "好的，我们会尽快给您回电。再见。",
        "9": "好的，我们将不再拨打此类电话。再见。",
        "other": "输入无效。再见。",
    },
    "en-US": {
        "2": "Thank you. We will call you back soon. Goodbye.",
        "9": "Understood. We will stop these calls. Goodbye.",
        "other": "That was not a valid choice. Goodbye.",
    },
}


def _context(intent: ContactIntent, config: TwilioChannelsConfig) -> dict[str, Any]:
    institution = config.institution(intent.jurisdiction)
    return template_context(
        intent,
        {
            "institution": institution.name,
            "callback_number": institution.callback_number,
            "contact_name": institution.contact_name,
        },
    )


def call_twiml(
    intent: ContactIntent,
    *,
    config: TwilioChannelsConfig,
    templates: TemplateStore,
    webhook_public_url: str,
) -> str:
    """TwiML the call opens with: the right-party check, nothing about the debt."""
    return identity_twiml(intent, webhook_public_url=webhook_public_url)


def verified_twiml(
    intent: ContactIntent,
    *,
    config: TwilioChannelsConfig,
    templates: TemplateStore,
    webhook_public_url: str,
) -> str:
    """TwiML for the confirmed right party: greeting, then the one-digit menu posted to
    ``/twilio/gather``."""
    locale, name = intent.template.locale, intent.template.name
    context = _context(intent, config)
    action = f"{webhook_public_url.rstrip('/')}/twilio/gather?intent_id={intent.intent_id}"
    response = VoiceResponse()
    response.say(templates.render(locale, "voice", name, "txt", context), language=locale)
    gather = response.gather(num_digits=1, action=action, method="POST", timeout=8)
    gather.say(templates.render(locale, "voice", name, "menu", context), language=locale)
    gather.say(ivr_text(locale, "menu_promise"), language=locale)
    response.hangup()
    return str(response)


def voicemail_twiml(
    intent: ContactIntent, *, config: TwilioChannelsConfig, templates: TemplateStore
) -> str:
    """TwiML the webhook serves when AMD reports ``AnsweredBy=machine_*``: limited content only."""
    institution = config.institution(intent.jurisdiction)
    limited = {
        "business_name": institution.voicemail_business_name,
        "contact_name": institution.contact_name,
        "callback_number": institution.callback_number,
    }
    locale = intent.template.locale
    text = templates.render(locale, "voice", intent.template.name, "voicemail", limited)
    response = VoiceResponse()
    response.say(text, language=locale)
    response.hangup()
    return str(response)


def gather_twiml(
    intent: ContactIntent, digits: str, *, config: TwilioChannelsConfig, templates: TemplateStore
) -> str:
    """TwiML answering a menu choice; the webhook records 2 (callback) and 9 (stop) itself."""
    locale = intent.template.locale
    acks = _ACKS.get(locale, _ACKS["en-US"])
    response = VoiceResponse()
    if digits == "1":
        context = _context(intent, config)
        text = templates.render(locale, "voice", intent.template.name, "amount", context)
        response.say(text, language=locale)
    else:
        response.say(acks.get(digits, acks["other"]), language=locale)
    response.hangup()
    return str(response)


def dial_outcome_from_status(call_status: str, answered_by: str | None) -> DialOutcome:
    """Map a call status callback (CallStatus, AnsweredBy) to the outcome the caps count.

    Non-final statuses give PENDING. ``failed`` is, per Twilio, a number that cannot be dialled:
    NOT_IN_SERVICE (excluded from US attempt counts). An answered call whose detection is
    ``unknown`` counts as a conversation: the stricter reading for the caps.
    """
    status = call_status.lower()
    if status == "completed":
        if answered_by and answered_by.startswith("machine"):
            return DialOutcome.VOICEMAIL
        if answered_by == "fax":
            return DialOutcome.FAILED
        return DialOutcome.CONVERSATION
    return {
        "busy": DialOutcome.BUSY,
        "no-answer": DialOutcome.NO_ANSWER,
        "failed": DialOutcome.NOT_IN_SERVICE,
        "canceled": DialOutcome.FAILED,
    }.get(status, DialOutcome.PENDING)


class VoiceChannel(TwilioChannel):
    """ChannelAdapter for calls; one instance per worker process."""

    channel = Channel.VOICE

    def twiml(self, intent: ContactIntent) -> str:
        return call_twiml(
            intent,
            config=self.config,
            templates=self.templates,
            webhook_public_url=self.webhook_public_url,
        )

    def check_templates(self) -> list[str]:
        """Render every voice template (all parts) with worst-case values; returns those checked.

        Raises ConfigError for a missing part, a voicemail using more than the limited-content
        fields, or call TwiML over 4,000 characters.
        """
        checked: list[str] = []
        for institution in self.config.institutions.values():
            names = sorted(
                {
                    n
                    for loc, ch, n, _ in self.templates.names()
                    if ch == "voice" and loc == institution.locale
                }
            )
            for name in names:
                intent = worst_case_intent(
                    institution.jurisdiction, institution.locale, Channel.VOICE, name
                )
                twiml = max(
                    self.twiml(intent),
                    verified_twiml(
                        intent, config=self.config, templates=self.templates,
                        webhook_public_url=self.webhook_public_url,
                    ),
                    key=len,
                )  # fmt: skip
                if len(twiml) > MAX_TWIML_CHARS:
                    raise ConfigError(
                        f"voice template {institution.locale}/{name}: TwiML is {len(twiml)} "
                        f"characters, Twilio accepts {MAX_TWIML_CHARS}"
                    )
                voicemail_twiml(intent, config=self.config, templates=self.templates)
                gather_twiml(intent, "1", config=self.config, templates=self.templates)
                checked.append(f"{institution.locale}/voice/{name}")
        return checked

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        """Place one call; raises the ChannelError that classifies any failure."""
        if intent.recipient.phone is None:
            raise PermanentChannelError("voice intent without a phone number")
        sender = self.config.sender("voice", intent.jurisdiction)
        twiml = self.twiml(intent)
        if len(twiml) > MAX_TWIML_CHARS:
            raise PermanentChannelError(
                f"call TwiML is {len(twiml)} characters", provider_code="twiml_too_long"
            )
        try:
            call = await self._client.calls.create_async(
                to=intent.recipient.phone,
                from_=sender.from_number,
                twiml=twiml,
                timeout=self.config.voice_ring_timeout_s,
                machine_detection="DetectMessageEnd",
                async_amd="true",
                async_amd_status_callback=self.callback_url("amd", intent),
                async_amd_status_callback_method="POST",
                status_callback=self.callback_url("call-status", intent),
                status_callback_method="POST",
                status_callback_event=STATUS_EVENTS,
            )
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise self.create_failed(exc, intent, attempt) from exc
        self.refuse_unsent(intent, attempt, call.status)
        log.info("voice.call_placed", intent_id=intent.intent_id, attempt=attempt, sid=call.sid)
        return SendResult(
            provider_ref=str(call.sid),
            status=str(call.status or "queued"),
            detail={"dial_outcome": DialOutcome.PENDING.value},
        )
