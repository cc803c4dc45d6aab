"""The receipts feed: publish what the ledger owes ``dunning.receipts``, from the ledger.

The webhook stores each receipt with its feed message in one transaction
(:func:`feed_message`, ``dunning.ledger.receipts_outbox``) and answers; :class:`ReceiptFeed`
publishes from there. It runs as one task per webhook process: at start-up (what a crash left
is published first), when woken after each stored receipt, and every ``idle_poll_s`` (what
another process left). Each pass takes the oldest unpublished entries in batches, publishes a
batch with confirms and marks it published, until nothing is owed.

A broker that is down or refuses a message leaves the entries unpublished: the failure is
logged (``receipts.publish_failed``), the connection dropped, and the pass tried again after a
backoff (doubling up to ``retry_max_s``). The webhook answers callbacks meanwhile; nothing but
the ledger holds what is owed, so a restart loses nothing.

On the wire this is at least once: a process that dies between the broker's confirm and the
mark publishes that batch again on restart. Every message carries the receipt's stable
message id ``<provider_ref>:<status>``, by which readers de-duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from dunning.broker.base import OutboundMessage, Publisher
from dunning.broker.topology import RECEIPTS_EXCHANGE
from dunning.clock import Clock
from dunning.errors import BrokerError, DunningError
from dunning.ledger import Ledger
from dunning.ledger import receipts_outbox as outbox
from dunning.ledger.receipts_store import ReceiptInput, ReceiptOutcome
from dunning.receipts import statuses

__all__ = ["BATCH_SIZE", "RECEIPT_SCHEMA", "ReceiptFeed", "feed_message", "message_id"]

log = structlog.get_logger(__name__)

RECEIPT_SCHEMA = "dunning.receipt/1"
#: Entries published per confirm round (and the most a crash can make published twice).
BATCH_SIZE = 100


def message_id(provider_ref: str, status: str) -> str:
    """The feed's message id of a receipt: stable, one per stored receipt."""
    return f"{provider_ref}:{status}"


def feed_message(
    item: ReceiptInput, outcome: ReceiptOutcome, *, received_at: datetime
) -> outbox.FeedMessage:
    """The feed message of a receipt, as it stands when the receipt is stored (docs/receipts.md)."""
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
    return outbox.FeedMessage(
        routing_key=f"{channel.value}.{status}",
        message_id=message_id(item.provider_ref, status),
        body=json.dumps(body, sort_keys=True),
    )


class ReceiptFeed:
    """Publishes the ledger's unpublished receipts through publishers made by ``connect``.

    ``owns_publisher``: the feed closes a publisher after a broker failure (the next attempt
    calls ``connect`` again) and when it stops; False keeps the one publisher ``connect``
    returns, which its caller closes. Only the feed's task uses the publisher.
    """

    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        connect: Callable[[], Publisher],
        *,
        owns_publisher: bool = True,
        batch_size: int = BATCH_SIZE,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        idle_poll_s: float = 5.0,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self._connect = connect
        self._owns_publisher = owns_publisher
        self.batch_size = batch_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.idle_poll_s = idle_poll_s
        self._publisher: Publisher | None = None
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._idle = asyncio.Event()  # a pass found nothing owed after the last wake
        self._stopping = asyncio.Event()
        #: Passes that failed since the last one that succeeded (0: the feed is healthy).
        self.failures = 0
        #: Every failed pass since start (for operators' and tests' eyes).
        self.failed_passes = 0

    # --- control ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the task (once) and have it publish whatever the ledger owes."""
        if self._task is None and not self._stopping.is_set():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="receipt-feed")
        self._idle.clear()
        self._woken.set()

    def wake(self) -> None:
        """A receipt was stored: publish it soon (starts the task if it is not running yet)."""
        self.start()

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until a pass begun after this call found nothing owed; TimeoutError after
        ``timeout_s`` (the broker is down, or another process holds the rest)."""
        self.wake()
        async with asyncio.timeout(timeout_s):
            await self._idle.wait()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Publish what is owed within ``grace_s`` while the broker answers, then end the task.

        What is left stays in the ledger for the next start.
        """
        if self._task is not None and self.failures == 0:
            with contextlib.suppress(TimeoutError):
                await self.flush(grace_s)
        self._stopping.set()
        self._woken.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=grace_s)
            if not done:  # a publish is stuck in its thread: leave its publisher to it
                self._task.cancel()
                log.warning("receipts.feed_abandoned", grace_s=grace_s)
                return
        await asyncio.to_thread(self._drop_publisher)

    # --- the task -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._woken.clear()
            try:
                published = await asyncio.to_thread(self._publish_owed)
            except Exception as exc:  # noqa: BLE001 -- the feed must outlive any one failure
                await self._back_off(exc)
                continue
            if self.failures:
                log.info("receipts.feed_recovered", after_failures=self.failures)
            self.failures = 0
            if published:
                log.debug("receipts.published", count=published)
            if not self._woken.is_set():
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_poll_s):
                    await self._woken.wait()

    def _publish_owed(self) -> int:
        """Publish batches until one comes back short; runs in a thread."""
        total = 0
        while not self._stopping.is_set():
            taken = self.ledger.publish_receipt_feed(
                self._publish, clock=self.clock, limit=self.batch_size
            )
            total += taken
            if taken < self.batch_size:
                break
        return total

    def _publish(self, batch: Sequence[outbox.PendingMessage]) -> None:
        messages = [
            OutboundMessage(
                exchange=RECEIPTS_EXCHANGE,
                routing_key=entry.message.routing_key,
                body=entry.message.body.encode(),
                message_id=entry.message.message_id,
            )
            for entry in batch
        ]
        if self._publisher is None:
            self._publisher = self._connect()
        try:
            self._publisher.publish_many(messages)
        except BrokerError:
            self._drop_publisher()
            raise

    def _drop_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None and self._owns_publisher:
            publisher.close()

    async def _back_off(self, exc: Exception) -> None:
        self.failures += 1
        self.failed_passes += 1
        delay = min(self.retry_max_s, self.retry_initial_s * 2 ** (self.failures - 1))
        if isinstance(exc, DunningError):
            owed = await asyncio.to_thread(self._owed_or_none)
            log.warning(
                "receipts.publish_failed",
                error=str(exc),
                error_class=type(exc).__name__,
                unpublished=owed,
                retry_in_s=delay,
            )
        else:  # a defect: the class and traceback, no data; start over on a new connection
            log.exception("receipts.feed_failed", error_class=type(exc).__name__)
            await asyncio.to_thread(self._drop_publisher)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopping.wait()

    def _owed_or_none(self) -> int | None:
        try:
            return self.ledger.unpublished_receipts()
        except DunningError:
            return None  # the ledger is what failed
