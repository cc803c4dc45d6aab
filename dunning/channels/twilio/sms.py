"""SMS through the twilio Messages API.

Every message is ``<institution prefix><rendered template>``: the registered institution name is
in every SMS by construction, and :meth:`SmsChannel.check_templates` (run by
:meth:`SmsChannel.from_settings`) refuses templates that lack the opt-out line or whose
worst-case rendering exceeds the segment budget. The status callback URL carries the intent id,
so receipts (and the reconciler) find the intent without a lookup by SID.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog
from twilio.base.exceptions import TwilioException

from dunning.channels.base import SendResult
from dunning.channels.segments import count_segments
from dunning.channels.twilio.base import TwilioChannel, worst_case_intent
from dunning.channels.twilio.http import classify_twilio_error
from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import Channel, ContactIntent
from dunning.templates import template_context

__all__ = ["SmsChannel"]

log = structlog.get_logger(__name__)

_LOOKUP_LIMIT = 200  # messages to one number in two days: far more than any contact cap allows
_CLOCK_SKEW = timedelta(minutes=5)  # Twilio's clock against ours


class SmsChannel(TwilioChannel):
    """ChannelAdapter for SMS; one instance per worker process, shared by concurrent sends."""

    channel = Channel.SMS

    def status_callback(self, intent: ContactIntent) -> str:
        return self.callback_url("status", intent)

    def render(self, intent: ContactIntent) -> str:
        """The exact SMS text: institution prefix + the rendered ``txt`` part."""
        institution = self.config.institution(intent.jurisdiction)
        context = template_context(
            intent,
            {
                "institution": institution.name,
                "opt_out": institution.opt_out,
                "callback_number": institution.callback_number,
                "contact_name": institution.contact_name,
            },
        )
        text = self.templates.render(
            intent.template.locale, "sms", intent.template.name, "txt", context
        )
        return f"{institution.sms_prefix}{text}"

    def check_templates(self) -> list[str]:
        """Render every SMS template in each institution's locale with worst-case values.

        Returns the template paths checked; raises ConfigError naming the first template that
        lacks the opt-out line or needs more than ``[sms] max_segments`` parts.
        """
        checked: list[str] = []
        budget = self.config.sms_max_segments
        for institution in self.config.institutions.values():
            for locale, channel, name, part in self.templates.names():
                if channel != "sms" or part != "txt" or locale != institution.locale:
                    continue
                rel = self.templates.path(locale, channel, name, part)
                intent = worst_case_intent(institution.jurisdiction, locale, Channel.SMS, name)
                text = self.render(intent)
                if institution.opt_out not in text:
                    raise ConfigError(
                        f"template {rel}: lacks the opt-out line {institution.opt_out!r}"
                    )
                count = count_segments(text)
                if count.segments > budget:
                    raise ConfigError(
                        f"template {rel}: needs {count.segments} {count.encoding.value} segments "
                        f"({count.units} units) with long values; the budget is {budget}"
                    )
                checked.append(rel)
        return checked

    async def find_sent(self, intent: ContactIntent, *, since: datetime) -> SendResult | None:
        """The Message this intent became if Twilio accepted it at or after ``since``.

        Twilio filters by recipient and sent day; the exact text (deterministic for an intent)
        and the creation time pick the one. Raises the classified ChannelError when Twilio
        cannot be asked.
        """
        if intent.recipient.phone is None:
            return None
        body = self.render(intent)
        try:
            messages = await self._client.messages.list_async(
                to=intent.recipient.phone,
                date_sent_after=since - timedelta(days=1),
                limit=_LOOKUP_LIMIT,
            )
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise classify_twilio_error(exc) from exc
        for message in messages:
            created = message.date_created
            if message.body == body and (created is None or created >= since - _CLOCK_SKEW):
                return SendResult(
                    provider_ref=str(message.sid),
                    status=str(message.status or "queued"),
                    detail={"found_by": "provider_lookup"},
                )
        return None

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        """Create one Message; raises the ChannelError that classifies any failure."""
        if intent.recipient.phone is None:
            raise PermanentChannelError("sms intent without a phone number")
        body = self.render(intent)
        count = count_segments(body)
        if count.segments > self.config.sms_max_segments:
            # A template passed the check, but this intent's values made it longer still.
            raise PermanentChannelError(
                f"message needs {count.segments} segments, budget {self.config.sms_max_segments}",
                provider_code="segment_budget",
            )
        sender = self.config.sender("sms", intent.jurisdiction)
        kwargs: dict[str, Any] = {
            "to": intent.recipient.phone,
            "body": body,
            "status_callback": self.status_callback(intent),
        }
        if sender.messaging_service_sid is not None:
            kwargs["messaging_service_sid"] = sender.messaging_service_sid
        else:
            kwargs["from_"] = sender.from_number
        try:
            message = await self._client.messages.create_async(**kwargs)
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise self.create_failed(exc, intent, attempt) from exc
        self.refuse_unsent(
            intent, attempt, message.status, message.error_code, message.error_message
        )
        log.debug(  # the worker's outcome line carries the SID: one info line per send
            "sms.sent",
            intent_id=intent.intent_id,
            attempt=attempt,
            sid=message.sid,
            segments=count.segments,
        )
        return SendResult(
            provider_ref=str(message.sid),
            status=str(message.status or "queued"),
            detail={"segments": count.segments, "encoding": count.encoding.value},
        )
