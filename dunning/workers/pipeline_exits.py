"""How a message leaves the worker when it is not simply sent: a failed attempt recorded, a
final state without an attempt, a re-publish through a delay queue, a dead letter.

The part of :class:`dunning.workers.pipeline.IntentProcessor` that writes these exits; none of
them is on the path of a message that is sent, so they keep the plain one-call-per-thread
ledger calls.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from dunning.broker.base import AsyncBroker, Delivery, OutboundMessage
from dunning.broker.topology import DEAD_LETTER_EXCHANGE, delay_exchange, delay_hop_s
from dunning.clock import Clock
from dunning.errors import failed_before_provider
from dunning.intents import Channel, ContactIntent
from dunning.records import IntentState
from dunning.workers import headers as h
from dunning.workers.ports import LedgerPort, Outcome
from dunning.workers.redaction import scrub_reason

__all__ = ["MessageExits"]

log = structlog.get_logger("dunning.workers.pipeline")


class MessageExits:
    """Failed attempts, final states, delays and dead letters of one channel's worker."""

    channel: Channel
    ledger: LedgerPort
    broker: AsyncBroker
    clock: Clock

    async def _fail(
        self,
        intent: ContactIntent,
        attempt: int,
        exc: BaseException,
        next_state: IntentState,
        provider_code: str | None,
        *,
        reason: str | None = None,
    ) -> None:
        await asyncio.to_thread(
            self.ledger.record_failure,
            intent.intent_id,
            attempt,
            error_class=type(exc).__name__,
            reason=scrub_reason(reason or str(exc), intent),
            provider_code=provider_code,
            next_state=next_state,
            now=self.clock.now(),
            # A claim that failed before the provider reached nobody: the caps leave it out.
            reached_provider=not failed_before_provider(exc),
        )

    async def _set_state(self, intent: ContactIntent, state: IntentState, reason: str) -> None:
        """Record a final state without an attempt; the row is created if the evaluator never
        recorded this intent (a message from another producer or a replay)."""

        def write() -> None:
            now = self.clock.now()
            self.ledger.record_published([intent], now=now)
            self.ledger.set_state(intent.intent_id, state, reason=reason, now=now)

        await asyncio.to_thread(write)

    async def _delay(
        self,
        delivery: Delivery,
        intent: ContactIntent,
        until: datetime,
        now: datetime,
        *,
        attempt: int | None = None,
    ) -> None:
        """Re-publish through the delay queue that fits; the original is acked afterwards."""
        hop_s = delay_hop_s((until - now).total_seconds())
        headers = dict(delivery.headers)
        headers[h.NOT_BEFORE] = until.isoformat()
        headers.pop("x-death", None)  # each hop would otherwise grow the header without bound
        if attempt is not None:
            headers[h.ATTEMPT] = attempt
        await self.broker.publish(
            OutboundMessage(
                exchange=delay_exchange(hop_s),
                routing_key=self.channel.value,
                body=delivery.body,
                headers=headers,
                message_id=intent.intent_id,
            )
        )

    async def _dead(
        self,
        delivery: Delivery,
        intent: ContactIntent | None,
        *,
        error_class: str,
        reason: str,
        provider_code: str | None = None,
        attempts: int = 0,
    ) -> Outcome:
        now = self.clock.now()
        reason = scrub_reason(reason, intent)
        headers = h.dead_letter_headers(
            delivery.headers,
            error_class=error_class,
            reason=reason,
            provider_code=provider_code,
            attempts=attempts,
            now=now,
            queue=delivery.queue,
        )
        await self.broker.publish(
            OutboundMessage(
                exchange=DEAD_LETTER_EXCHANGE,
                routing_key=self.channel.value,
                body=delivery.body,
                headers=headers,
                message_id=intent.intent_id if intent else delivery.message_id,
            )
        )
        if intent is not None and attempts == 0:
            await self._set_state(intent, IntentState.DEAD, f"{error_class}: {reason}")
        log.warning("dead-lettered", error_class=error_class, reason=reason)
        return Outcome("dead", reason, intent.intent_id if intent else None)
