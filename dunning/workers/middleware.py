"""Middleware: hooks around each message, run in order on the way in and reversed on the way out.

A middleware overrides any of the no-op hooks. The default list is visible in
:data:`DEFAULT_MIDDLEWARE`; metrics and tracing add theirs next to it, never by magic.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence

import structlog

from dunning.broker.base import Delivery
from dunning.workers.pipeline import Outcome

__all__ = [
    "DEFAULT_MIDDLEWARE",
    "Middleware",
    "OutcomeCounter",
    "OutcomeLog",
    "run_after",
    "run_before",
]

log = structlog.get_logger(__name__)


class Middleware:
    def before_process(self, delivery: Delivery) -> None:
        """Called when a message is taken up, before decoding."""

    def after_process(self, delivery: Delivery, outcome: Outcome, elapsed_s: float) -> None:
        """Called with the outcome, before the ack."""

    def on_error(self, delivery: Delivery, error: BaseException) -> None:
        """Called when processing raised (the runtime then parks, retries or dead-letters it)."""


class OutcomeLog(Middleware):
    """One structured log line per message outcome (info for sends, warning for dead letters)."""

    def after_process(self, delivery: Delivery, outcome: Outcome, elapsed_s: float) -> None:
        level = "warning" if outcome.kind == "dead" else "info"
        getattr(log, level)(
            "outcome",
            outcome=outcome.kind,
            intent_id=outcome.intent_id,
            rule_id=outcome.rule_id,
            reason=outcome.reason,
            elapsed_ms=round(elapsed_s * 1000, 1),
            redelivered=delivery.redelivered,
            **({"provider_ref": outcome.provider_ref} if outcome.provider_ref else {}),
        )

    def on_error(self, delivery: Delivery, error: BaseException) -> None:
        log.error("processing failed", error=repr(error), queue=delivery.queue)


class OutcomeCounter(Middleware):
    """Counts outcomes by kind; ``wait_until`` lets a caller wait for a condition on them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors = 0
        self._changed = asyncio.Event()

    def after_process(self, delivery: Delivery, outcome: Outcome, elapsed_s: float) -> None:
        self.counts[outcome.kind] += 1
        self._changed.set()

    def on_error(self, delivery: Delivery, error: BaseException) -> None:
        self.errors += 1
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Return once ``predicate()`` holds, re-checking after every outcome; TimeoutError else."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def run_before(middleware: Sequence[Middleware], delivery: Delivery) -> None:
    for m in middleware:
        m.before_process(delivery)


def run_after(
    middleware: Sequence[Middleware], delivery: Delivery, outcome: Outcome, elapsed_s: float
) -> None:
    for m in reversed(middleware):
        m.after_process(delivery, outcome, elapsed_s)


#: What a worker runs when its parts name no middleware (``WorkerParts`` in
#: dunning/workers/assembly.py). OutcomeLog keeps no state, so one instance serves every worker.
DEFAULT_MIDDLEWARE: tuple[Middleware, ...] = (OutcomeLog(),)
