"""What happens after the stand-in accepts a create: status changes and signed callbacks.

SMS: sent, then delivered (or undelivered for a scripted number). Calls: initiated, ringing,
answered (in-progress), completed, or an earlier end (busy, no-answer, failed), plus the async
AMD callback when machine detection was asked for. A create answered with a failed status
reports only that status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dunning.clock import Clock
from dunning.sandbox.twilio_behaviour import FAILED_AT_CREATE, StandInBehaviour
from dunning.sandbox.twilio_callbacks import CallbackSender, call_events, rfc2822, sleep_ms

__all__ = ["Lifecycle"]


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Moves one accepted resource through its statuses, posting the callbacks asked for."""

    account_sid: str
    behaviour: StandInBehaviour
    callbacks: CallbackSender
    clock: Clock

    async def message(self, resource: dict[str, Any], form: dict[str, list[str]]) -> None:
        sid = resource["sid"]
        url = form.get("StatusCallback", [None])[0]
        failure = self.behaviour.undelivered_numbers.get(resource["to"])
        final = "delivered" if failure is None else "undelivered"
        steps: tuple[str, ...] = ("sent", final)
        if resource["status"] in FAILED_AT_CREATE:  # answered failed: only that is reported
            final, failure, steps = (
                resource["status"],
                resource["error_code"],
                (resource["status"],),
            )
        for status in steps:
            if status == final:
                await sleep_ms(self.behaviour.delivery_delay_ms)
            resource["status"] = status
            resource["date_updated"] = rfc2822(self.clock)
            if status == final and failure is not None:
                resource["error_code"] = failure
            if url:
                params = {
                    "AccountSid": self.account_sid,
                    "ApiVersion": "2010-04-01",
                    "From": resource["from"] or "",
                    "MessageSid": sid,
                    "MessageStatus": status,
                    "SmsSid": sid,
                    "SmsStatus": status,
                    "To": resource["to"],
                }
                if resource["messaging_service_sid"]:
                    params["MessagingServiceSid"] = resource["messaging_service_sid"]
                if status == final and failure is not None:
                    params["ErrorCode"] = str(failure)
                await self.callbacks.post(url, params)

    async def call(self, resource: dict[str, Any], form: dict[str, list[str]]) -> None:
        sid = resource["sid"]
        final, answered_by = self.behaviour.call_outcomes.get(
            resource["to"], ("completed", "human")
        )
        if resource["status"] in FAILED_AT_CREATE:
            final, answered_by = resource["status"], None
        amd = bool(form.get("MachineDetection"))
        url = form.get("StatusCallback", [None])[0]
        wanted = set(form.get("StatusCallbackEvent", [])) or {"completed"}
        amd_url = form.get("AsyncAmdStatusCallback", [None])[0]
        for sequence, (event, status) in enumerate(call_events(final)):
            if event == "completed":
                await sleep_ms(self.behaviour.delivery_delay_ms)
            resource["status"] = "queued" if status == "initiated" else status
            resource["date_updated"] = rfc2822(self.clock)
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": "2010-04-01",
                "CallSid": sid,
                "CallStatus": status,
                "CallbackSource": "call-progress-events",
                "Direction": "outbound-api",
                "From": resource["from"],
                "SequenceNumber": str(sequence),
                "Timestamp": rfc2822(self.clock),
                "To": resource["to"],
            }
            if amd and answered_by is not None and event in {"answered", "completed"}:
                resource["answered_by"] = answered_by
                params["AnsweredBy"] = answered_by
            if event == "completed":
                params["CallDuration"] = "0" if status != "completed" else "20"
            if url and event in wanted:
                await self.callbacks.post(url, params)
            if event == "answered" and amd and amd_url and answered_by is not None:
                amd_params = {
                    "AccountSid": self.account_sid,
                    "AnsweredBy": answered_by,
                    "CallSid": sid,
                    "MachineDetectionDuration": "2400",
                }
                await self.callbacks.post(amd_url, amd_params)
