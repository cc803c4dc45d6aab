"""What the webhook does with a receipt: store it in the ledger, then publish it.

Handlers only record and publish. Ledger calls run in a thread (``asyncio.to_thread``) so the
event loop keeps answering; publishing to ``dunning.receipts`` (routing key
``<channel>.<status>``) runs after the handler has answered, in a task :meth:`drain` waits for.
A receipt the ledger already had (same provider ref and status) is answered 200 and neither
stored nor published again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from dunning.broker.base import OutboundMessage, Publisher
from dunning.broker.topology import RECEIPTS_EXCHANGE
from dunning.channels.voice import dial_outcome_from_status
from dunning.clock import Clock
from dunning.errors import BrokerError, DecodeError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger import receipts_store as store
from dunning.receipts import statuses
from dunning.records import DialOutcome, Suppression

__all__ = ["RECEIPT_SCHEMA", "ProviderEvent", "ReceiptService"]

log = structlog.get_logger(__name__)

RECEIPT_SCHEMA = "dunning.receipt/1"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One email-provider or print-vendor event, decoded from the documented JSON shape."""

    channel: Channel
    provider_ref: str
    status: str
    intent_id: str | None
    raw: Mapping[str, Any]


class ReceiptService:
    """Records receipts in ``ledger`` and publishes them on ``publisher`` (when there is one)."""

    def __init__(self, ledger: Ledger, clock: Clock, publisher: Publisher | None = None) -> None:
        self.ledger = ledger
        self.clock = clock
        self.publisher = publisher
        self._publish_lock = asyncio.Lock()  # the sync publishers are not thread-safe
        self._tasks: set[asyncio.Task[None]] = set()

    # --- Twilio -------------------------------------------------------------------------------

    async def message_status(
        self, params: Mapping[str, str], intent_id: str | None
    ) -> store.ReceiptOutcome:
        """An SMS status callback (MessageSid, MessageStatus, ErrorCode)."""
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        if not sid or not status:
            raise DecodeError("status callback without MessageSid or MessageStatus")
        return await self.record(Channel.SMS, sid, status, intent_id=intent_id, raw=params)

    async def call_status(
        self, params: Mapping[str, str], intent_id: str | None
    ) -> store.ReceiptOutcome:
        """A call progress callback; a final one also sets the attempt's dial outcome."""
        sid, status = params.get("CallSid", ""), params.get("CallStatus", "")
        if not sid or not status:
            raise DecodeError("call status callback without CallSid or CallStatus")
        answered_by = params.get("AnsweredBy") or None
        if answered_by is None and intent_id is not None and status.lower() == "completed":
            # Async AMD reports on its own callback, which may come before this one.
            answered_by = await asyncio.to_thread(
                store.latest_answered_by, self.ledger.engine, intent_id
            )
        dial = dial_outcome_from_status(status, answered_by)
        return await self.record(
            Channel.VOICE, sid, status, intent_id=intent_id, raw=params, dial_outcome=dial
        )

    async def amd_result(self, params: Mapping[str, str], intent_id: str | None) -> str | None:
        """Record an answering-machine detection result; returns AnsweredBy."""
        answered_by = params.get("AnsweredBy") or None
        if intent_id is not None and answered_by is not None:
            detail = {"answered_by": answered_by, "call_sid": params.get("CallSid", "")}
            await asyncio.to_thread(
                self.ledger.audit, intent_id, "amd", now=self.clock.now(), detail=detail
            )
        return answered_by

    # --- email provider and print vendor ------------------------------------------------------

    async def provider_event(self, event: ProviderEvent) -> store.ReceiptOutcome:
        """An email or letter event; complaints and hard bounces also suppress email."""
        outcome = await self.record(
            event.channel,
            event.provider_ref,
            event.status,
            intent_id=event.intent_id,
            raw=event.raw,
        )
        status = statuses.normalise(event.status)
        if event.channel is Channel.EMAIL and status in {"complained", "bounced"}:
            await self._suppress_email(outcome.intent_id, status)
        return outcome

    async def _suppress_email(self, intent_id: str | None, status: str) -> None:
        if intent_id is None:
            return
        intent = await asyncio.to_thread(store.load_intent, self.ledger.engine, intent_id)
        if intent is None:
            return
        reason = "complaint" if status == "complained" else "bounced"
        suppression = Suppression(
            person_id=intent.person_id,
            channel=Channel.EMAIL,
            reason=reason,
            source=f"email_{reason}",
            created_at=self.clock.now(),
        )
        await asyncio.to_thread(self.ledger.add_suppression, suppression)
        log.info("receipts.email_suppressed", intent_id=intent_id, reason=reason)

    # --- the common path ----------------------------------------------------------------------

    async def record(
        self,
        channel: Channel,
        provider_ref: str,
        status: str,
        *,
        intent_id: str | None,
        raw: Mapping[str, Any],
        dial_outcome: DialOutcome | None = None,
    ) -> store.ReceiptOutcome:
        """Store one receipt (ranked per channel) and schedule its publication."""
        status = statuses.normalise(status)
        now = self.clock.now()
        outcome = await asyncio.to_thread(
            store.store_receipt,
            self.ledger.engine,
            provider_ref=provider_ref,
            channel=channel,
            status=status,
            rank=statuses.rank(channel, status),
            now=now,
            intent_id=intent_id,
            raw=raw,
            dial_outcome=dial_outcome,
        )
        log.info(
            "receipts.recorded",
            channel=channel.value,
            status=status,
            provider_ref=provider_ref,
            intent_id=outcome.intent_id,
            outcome=outcome.kind,
        )
        if outcome.kind != "duplicate" and self.publisher is not None:
            body = {
                "schema": RECEIPT_SCHEMA,
                "intent_id": outcome.intent_id,
                "provider_ref": provider_ref,
                "channel": channel.value,
                "status": status,
                "final": statuses.is_final(channel, status),
                "applied": outcome.kind == "applied",
                "state": None if outcome.state is None else outcome.state.value,
                "dial_outcome": None if dial_outcome is None else dial_outcome.value,
                "received_at": now.isoformat(),
            }
            self._spawn(self._publish(channel, status, provider_ref, body))
        return outcome

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(
        self, channel: Channel, status: str, provider_ref: str, body: dict[str, Any]
    ) -> None:
        assert self.publisher is not None
        message = OutboundMessage(
            exchange=RECEIPTS_EXCHANGE,
            routing_key=f"{channel.value}.{status}",
            body=json.dumps(body, sort_keys=True).encode(),
            message_id=f"{provider_ref}:{status}",
        )
        async with self._publish_lock:
            try:
                await asyncio.to_thread(self.publisher.publish_many, [message])
            except BrokerError as exc:
                # The ledger already holds the receipt: the exchange is a notification feed.
                log.warning(
                    "receipts.publish_failed", routing_key=message.routing_key, error=str(exc)
                )

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for every scheduled publication; raises TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
