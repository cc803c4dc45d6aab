"""What the webhook does with a receipt: store it in the ledger, then publish it.

Handlers only record and publish. Ledger calls run in a thread (``asyncio.to_thread``) so the
event loop keeps answering; publishing to ``dunning.receipts`` (routing key
``<channel>.<status>``) runs after the handler has answered, in a task :meth:`drain` waits for.
A receipt the ledger already had (same provider ref and status) is answered 200 and neither
stored nor published again. A batch of provider events is stored in one transaction, whole or
not at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from dunning.broker.base import OutboundMessage, Publisher
from dunning.broker.topology import RECEIPTS_EXCHANGE
from dunning.channels.twilio.voice import dial_outcome_from_status
from dunning.clock import Clock
from dunning.errors import BrokerError, DecodeError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger import receipts_store as store
from dunning.receipts import statuses
from dunning.receipts.events import (
    INTENT_ID_MAX,
    PROVIDER_REF_MAX,
    STATUS_MAX,
    ProviderEvent,
    checked_text,
)
from dunning.records import DialOutcome

__all__ = ["RECEIPT_SCHEMA", "ProviderEvent", "ReceiptService"]

log = structlog.get_logger(__name__)

RECEIPT_SCHEMA = "dunning.receipt/1"
#: Email statuses that also suppress the person's email, and the suppression's reason.
_EMAIL_SUPPRESSIONS = {"complained": "complaint", "bounced": "bounced"}


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
            answered_by = await asyncio.to_thread(self.ledger.latest_answered_by, intent_id)
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

    async def provider_events(self, events: Sequence[ProviderEvent]) -> list[store.ReceiptOutcome]:
        """A batch of email or letter events, stored in one transaction; complaints and hard
        bounces also suppress the person's email in it."""
        items: list[store.ReceiptInput] = []
        for event in events:
            status = statuses.normalise(event.status)
            email = event.channel is Channel.EMAIL
            item = store.ReceiptInput(
                provider_ref=event.provider_ref,
                channel=event.channel,
                status=status,
                rank=statuses.rank(event.channel, status),
                intent_id=event.intent_id,
                raw=event.raw,
                suppress_email=_EMAIL_SUPPRESSIONS.get(status) if email else None,
            )
            items.append(item)
        return await self._store(items)

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
        """Store one receipt (ranked per channel) and schedule its publication.

        Raises DecodeError when a field is longer than the ledger holds or carries a NUL.
        """
        status = statuses.normalise(status)
        checked_text(provider_ref, "provider reference", PROVIDER_REF_MAX)
        checked_text(status, "status", STATUS_MAX)
        if intent_id is not None:
            checked_text(intent_id, "intent_id", INTENT_ID_MAX)
        item = store.ReceiptInput(
            provider_ref=provider_ref,
            channel=channel,
            status=status,
            rank=statuses.rank(channel, status),
            intent_id=intent_id,
            raw=raw,
            dial_outcome=dial_outcome,
        )
        return (await self._store([item]))[0]

    async def _store(self, items: Sequence[store.ReceiptInput]) -> list[store.ReceiptOutcome]:
        now = self.clock.now()
        outcomes = await asyncio.to_thread(self.ledger.store_receipts, items, now=now)
        for item, outcome in zip(items, outcomes, strict=True):
            log.info(
                "receipts.recorded",
                channel=item.channel.value,
                status=item.status,
                provider_ref=item.provider_ref,
                intent_id=outcome.intent_id,
                outcome=outcome.kind,
            )
            if item.suppress_email and outcome.kind != "duplicate" and outcome.intent_id:
                log.info(
                    "receipts.email_suppressed",
                    intent_id=outcome.intent_id,
                    reason=item.suppress_email,
                )
            if outcome.kind != "duplicate" and self.publisher is not None:
                self._spawn(self._publish(item, outcome, now))
        return outcomes

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(
        self, item: store.ReceiptInput, outcome: store.ReceiptOutcome, received_at: datetime
    ) -> None:
        assert self.publisher is not None
        channel, status, dial = item.channel, item.status, item.dial_outcome
        body = {
            "schema": RECEIPT_SCHEMA,
            "intent_id": outcome.intent_id,
            "provider_ref": item.provider_ref,
            "channel": channel.value,
            "status": status,
            "final": statuses.is_final(channel, status),
            "applied": outcome.kind == "applied",
            "state": None if outcome.state is None else outcome.state.value,
            "dial_outcome": None if dial is None else dial.value,
            "received_at": received_at.isoformat(),
        }
        message = OutboundMessage(
            exchange=RECEIPTS_EXCHANGE,
            routing_key=f"{channel.value}.{status}",
            body=json.dumps(body, sort_keys=True).encode(),
            message_id=f"{item.provider_ref}:{status}",
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
