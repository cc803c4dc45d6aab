"""What a channel worker does with one message, from decode to the outcome the ack follows.

    decode + validate → expiry / not-before → rate limit → ledger claim with the compliance gate
    (one transaction) → channel.send() → ledger outcome → (delay | dead-letter) publish

Every path ends in an :class:`Outcome`; the runtime acks after ``process`` returns, so the
ledger and any re-published copy are durable before the original leaves the queue. A crash
between the two leaves a duplicate message, never a duplicate send: the ledger claim refuses
an intent that is already sent or being sent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from dunning.broker.base import AsyncBroker, Delivery
from dunning.channels.base import ChannelAdapter, ProviderLookup
from dunning.clock import Clock
from dunning.errors import (
    ChannelError,
    ConfigError,
    DecodeError,
    PermanentChannelError,
    RateLimitedError,
    TransientChannelError,
)
from dunning.intents import Channel, ContactIntent, decode_intent
from dunning.logs import hide, reveal
from dunning.records import ContactHistory, GateDecision, IntentState, Suppression
from dunning.workers import headers as h
from dunning.workers.claim_batcher import ClaimBatcher
from dunning.workers.ledger_writer import SentRecord, SentWriter
from dunning.workers.pipeline_exits import MessageExits
from dunning.workers.ports import Gate, LedgerPort, Outcome, OutcomeKind
from dunning.workers.ratelimit.limiter import RateLimiter
from dunning.workers.redaction import personal_data, scrub_reason
from dunning.workers.retries import RetryPolicy

__all__ = ["Gate", "IntentProcessor", "LedgerPort", "Outcome", "OutcomeKind"]

log = structlog.get_logger(__name__)


class IntentProcessor(MessageExits):
    """Turns one delivery into one outcome for the worker of ``channel``."""

    def __init__(
        self,
        *,
        channel: Channel,
        adapter: ChannelAdapter,
        ledger: LedgerPort,
        broker: AsyncBroker,
        clock: Clock,
        gate: Gate | None = None,
        limiter: RateLimiter,
        limit_key: str,
        policy: RetryPolicy,
        limit_keys: Callable[[ContactIntent], Sequence[str]] | None = None,
        worker_id: str,
        reconcile_after_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.channel = channel
        self.adapter = adapter
        self.ledger = ledger
        self.broker = broker
        self.clock = clock
        self.gate = gate
        self.limiter = limiter
        self.limit_key = limit_key  # the provider account: a 429 pauses it
        # Every key one send acquires (account, sender, recipient); default: the account only.
        self.limit_keys = limit_keys or (lambda _intent: (limit_key,))
        self.policy = policy
        self.worker_id = worker_id
        self.reconcile_after_s = reconcile_after_s
        self.rng = rng or random.Random()
        self.queue = f"dunning.{channel.value}"
        self.sent_writer = SentWriter(ledger, application_name=f"dunning-worker-{channel.value}")
        self.claims = ClaimBatcher(
            ledger,
            worker=worker_id,
            reconcile_after_s=reconcile_after_s,
            application_name=f"dunning-worker-{channel.value}",
        )

    async def aclose(self) -> None:
        """Stop the ledger writer and close the limiter's store connection (Redis); call once
        no message is being processed any more."""
        await self.sent_writer.aclose()
        await self.claims.aclose()
        close = getattr(self.limiter, "aclose", None)
        if close is not None:
            await close()

    async def process(self, delivery: Delivery) -> Outcome:
        """Handle ``delivery`` completely; raises only for infrastructure faults (requeue)."""
        try:
            intent = decode_intent(delivery.body)
        except DecodeError as exc:
            return await self._dead(delivery, None, error_class="DecodeError", reason=str(exc))
        if intent.channel is not self.channel:
            reason = f"a {intent.channel.value} intent arrived on {self.queue}"
            return await self._dead(delivery, intent, error_class="WrongQueue", reason=reason)
        structlog.contextvars.bind_contextvars(
            intent_id=intent.intent_id,
            trace_id=intent.trace_id,
            channel=self.channel.value,
            worker=self.worker_id,
        )
        hidden = hide(personal_data(intent))  # this person's values stay out of every log line
        try:
            return await self._process(delivery, intent)
        finally:
            reveal(hidden)
            structlog.contextvars.unbind_contextvars(
                "intent_id", "trace_id", "channel", "worker", "attempt"
            )

    async def _process(self, delivery: Delivery, intent: ContactIntent) -> Outcome:
        now = self.clock.now()
        wait_until = h.not_before(delivery.headers) or intent.not_before
        if now >= intent.expires_at:
            await self._set_state(intent, IntentState.EXPIRED, "expires_at passed before sending")
            return Outcome("expired", "expires_at passed", intent.intent_id)
        if wait_until is not None and wait_until > now:
            await self._delay(delivery, intent, wait_until, now)
            return Outcome("delayed", f"not before {wait_until.isoformat()}", intent.intent_id)

        await self.limiter.acquire(*self.limit_keys(intent))
        now = self.clock.now()
        gate = self._gate_for(intent, now)
        claim = await self.claims.claim(intent, now=now, gate=gate)
        if claim.kind == "done":
            return Outcome("duplicate", "already sent or final", intent.intent_id)
        if claim.kind == "in_doubt":
            since = claim.sending_since or now
            until = max(now, since) + _seconds(self.reconcile_after_s)
            await self._delay(delivery, intent, until, now)
            return Outcome("in_doubt", "another send may be in flight", intent.intent_id)
        if claim.kind == "gated":
            assert claim.decision is not None
            return await self._gated(delivery, intent, claim.decision, now)
        if claim.reclaimed_since is not None and isinstance(self.adapter, ProviderLookup):
            found = await self._look_up(delivery, intent, claim.attempt, claim.reclaimed_since)
            if found is not None:
                return found
        return await self._send(delivery, intent, claim.attempt)

    async def _look_up(
        self, delivery: Delivery, intent: ContactIntent, attempt: int, since: datetime
    ) -> Outcome | None:
        """Before sending a reclaimed intent again, ask the provider whether it already has it.

        A hit is recorded as this attempt's send (no second contact); a failed lookup holds the
        intent for another reconcile window rather than risk a duplicate.
        """
        assert isinstance(self.adapter, ProviderLookup)
        try:
            found = await self.adapter.find_sent(intent, since=since)
        except ChannelError as exc:
            held = TransientChannelError(f"provider lookup failed: {exc.reason}", ambiguous=True)
            return await self._transient(delivery, intent, attempt, held)
        if found is None:
            return None
        await self.sent_writer.record_sent(
            SentRecord(
                intent.intent_id,
                attempt,
                found.provider_ref,
                found.status,
                found.detail,
                self.clock.now(),
            )
        )
        log.warning("reclaimed intent found at the provider, not sent again", attempt=attempt)
        return Outcome("duplicate", "found at the provider", intent.intent_id)

    def _gate_for(
        self, intent: ContactIntent, now: datetime
    ) -> Callable[[ContactHistory], GateDecision] | None:
        gate = self.gate
        if gate is None:
            return None
        return lambda history: gate(intent, history, now)

    async def _gated(
        self, delivery: Delivery, intent: ContactIntent, decision: GateDecision, now: datetime
    ) -> Outcome:
        if decision.action == "defer" and decision.until is not None:
            if decision.until >= intent.expires_at:
                reason = f"{decision.rule_id}: next allowed time is after expires_at"
                await self._set_state(intent, IntentState.EXPIRED, reason)
                return Outcome("expired", reason, intent.intent_id, decision.rule_id)
            await self._delay(delivery, intent, decision.until, now)
            return Outcome("deferred", decision.reason, intent.intent_id, decision.rule_id)
        if decision.action == "refuse":
            return await self._dead(
                delivery,
                intent,
                error_class="ComplianceRefused",
                reason=decision.reason,
                provider_code=decision.rule_id,
            )
        return Outcome("suppressed", decision.reason, intent.intent_id, decision.rule_id)

    async def _send(self, delivery: Delivery, intent: ContactIntent, attempt: int) -> Outcome:
        structlog.contextvars.bind_contextvars(attempt=attempt)
        log.debug("sending")
        try:
            result = await self.adapter.send(intent, attempt=attempt)
        except RateLimitedError as exc:
            now = self.clock.now()
            wait_s = exc.retry_after_s if exc.retry_after_s is not None else 1.0
            self.limiter.pause(self.limit_key, wait_s)
            await asyncio.to_thread(
                self.ledger.release, intent.intent_id, attempt, reason=str(exc), now=now
            )
            await self._delay(delivery, intent, now + _seconds(wait_s), now)
            return Outcome("throttled", str(exc), intent.intent_id)
        except TransientChannelError as exc:
            return await self._transient(delivery, intent, attempt, exc)
        except ConfigError as exc:
            # A missing template or sender for this intent: permanent until an operator fixes
            # the configuration and replays the dead letter.
            await self._fail(intent, attempt, exc, IntentState.DEAD, None)
            return await self._dead(
                delivery, intent, error_class="ConfigError", reason=str(exc), attempts=attempt
            )
        except PermanentChannelError as exc:
            now = self.clock.now()
            if exc.suppress:
                suppression = Suppression(
                    intent.person_id, self.channel, "opt_out", f"provider_{exc.provider_code}", now
                )
                await asyncio.to_thread(self.ledger.add_suppression, suppression)
            await self._fail(intent, attempt, exc, IntentState.DEAD, exc.provider_code)
            return await self._dead(
                delivery,
                intent,
                error_class=type(exc).__name__,
                reason=exc.reason,
                provider_code=exc.provider_code,
                attempts=attempt,
            )
        except Exception as exc:  # an adapter bug must not kill the worker
            # The provider may or may not have accepted it: never retry blindly, dead-letter for
            # an operator to check and replay (the ledger keeps the intent from sending twice).
            log.exception("adapter raised an unexpected exception", attempt=attempt)
            reason = f"unexpected {type(exc).__name__}: {exc}"
            await self._fail(intent, attempt, exc, IntentState.DEAD, None, reason=reason)
            return await self._dead(
                delivery, intent, error_class=type(exc).__name__, reason=reason, attempts=attempt
            )
        # Group commit: this outcome shares a transaction with the others finishing now; the
        # call returns once that transaction committed, so the ack still follows the record.
        await self.sent_writer.record_sent(
            SentRecord(
                intent.intent_id,
                attempt,
                result.provider_ref,
                result.status,
                result.detail,
                self.clock.now(),
            )
        )
        # No log line here: OutcomeLog logs the outcome with the provider ref, the one info
        # line per send (each line costs the PII masking pass on the worker's one core).
        return Outcome(
            "sent", result.status, intent.intent_id,
            created_at=intent.created_at, provider_ref=result.provider_ref,
        )  # fmt: skip

    async def _transient(
        self, delivery: Delivery, intent: ContactIntent, attempt: int, exc: TransientChannelError
    ) -> Outcome:
        now = self.clock.now()
        reason = scrub_reason(exc.reason, intent)
        if exc.ambiguous:
            # The provider may have it: leave the claim in `sending` and come back after the
            # reconcile window, when a receipt (the callback carries the intent id) settles it.
            await asyncio.to_thread(
                self.ledger.audit,
                intent.intent_id,
                "send_in_doubt",
                now=now,
                detail={"attempt": attempt, "reason": reason},
            )
            await self._delay(delivery, intent, now + _seconds(self.reconcile_after_s), now)
            log.warning("send outcome unknown, holding for reconcile", attempt=attempt)
            return Outcome("in_doubt", reason, intent.intent_id)
        plan = self.policy.plan(
            attempt,
            now=now,
            expires_at=intent.expires_at,
            retry_after_s=exc.retry_after_s,
            rng=self.rng,
        )
        if plan.retry_at is not None:
            await self._fail(intent, attempt, exc, IntentState.QUEUED, exc.provider_code)
            await self._delay(delivery, intent, plan.retry_at, now, attempt=attempt)
            log.warning("send failed, will retry", attempt=attempt, reason=reason)
            return Outcome("retry", reason, intent.intent_id)
        if plan.give_up == "expires":
            await self._fail(intent, attempt, exc, IntentState.EXPIRED, exc.provider_code)
            return Outcome("expired", f"retry would pass expires_at: {reason}", intent.intent_id)
        await self._fail(intent, attempt, exc, IntentState.DEAD, exc.provider_code)
        reason = f"gave up after {attempt} attempts: {reason}"
        return await self._dead(
            delivery,
            intent,
            error_class=type(exc).__name__,
            reason=reason,
            provider_code=exc.provider_code,
            attempts=attempt,
        )


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
