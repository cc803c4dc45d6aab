"""What the webhook does with a receipt: store it in the ledger, owed to the receipts feed.

Handlers only record. Ledger calls run in a thread (``asyncio.to_thread``) so the event loop
keeps answering. With a feed, each receipt is stored together with its feed message (one
transaction) and the feed (:class:`~dunning.receipts.feed.ReceiptFeed`) is woken to publish it
to ``dunning.receipts`` (routing key ``<channel>.<status>``) from the ledger, after the
handler has answered; :meth:`ReceiptService.drain` waits for it. A receipt the ledger already
had (same provider ref and status) is answered 200 and neither stored nor published again. A
batch of provider events is stored in one transaction, whole or not at all.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from dunning.broker.base import Publisher
from dunning.channels.twilio.voice import dial_outcome_from_status
from dunning.clock import Clock
from dunning.errors import DecodeError
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
from dunning.receipts.feed import RECEIPT_SCHEMA, ReceiptFeed, feed_message
from dunning.receipts.group_write import GroupWriter
from dunning.records import DialOutcome

__all__ = ["RECEIPT_SCHEMA", "ProviderEvent", "ReceiptService"]

log = structlog.get_logger(__name__)

#: Email statuses that also suppress the person's email, and the suppression's reason.
_EMAIL_SUPPRESSIONS = {"complained": "complaint", "bounced": "bounced"}


class ReceiptService:
    """Records receipts in ``ledger``, owed to ``feed`` when there is one.

    ``publisher`` (instead of ``feed``): a feed over that one publisher, which the caller closes.
    """

    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        publisher: Publisher | None = None,
        *,
        feed: ReceiptFeed | None = None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        if feed is None and publisher is not None:
            feed = ReceiptFeed(ledger, clock, lambda: publisher, owns_publisher=False)
        self.feed = feed
        self._writes: GroupWriter[store.ReceiptInput, store.ReceiptOutcome] = GroupWriter(
            self._write
        )

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

    def _write(self, items: list[store.ReceiptInput]) -> list[store.ReceiptOutcome]:
        """One transaction for the receipts of one or more requests (a ledger thread)."""
        now = self.clock.now()
        feed = None if self.feed is None else functools.partial(feed_message, received_at=now)
        return self.ledger.store_receipts(items, now=now, feed=feed)

    async def _store(self, items: Sequence[store.ReceiptInput]) -> list[store.ReceiptOutcome]:
        outcomes = await self._writes.write(items)
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
        if self.feed is not None and any(o.kind != "duplicate" for o in outcomes):
            self.feed.wake()
        return outcomes

    async def start(self) -> None:
        """Start publishing what the ledger owes the feed (what a crash left goes first)."""
        if self.feed is not None:
            self.feed.start()

    async def stop(self) -> None:
        """Publish what is owed while the broker answers (briefly), then stop the feed."""
        if self.feed is not None:
            await self.feed.stop()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until the feed has published every receipt stored so far; raises TimeoutError
        after ``timeout_s`` (the broker is down: the receipts wait in the ledger)."""
        if self.feed is not None:
            await self.feed.flush(timeout_s)
