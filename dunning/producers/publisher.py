"""Publishing evaluated intents: record in the ledger, publish with confirms, mark published.

Per batch: ``record(batch)`` inserts the intents into the ledger and returns the ids that still
need publishing; only those are published to ``dunning.intents`` (routing key = channel) and
waited on for confirms; then ``mark(ids)`` records them as published. So re-running the
evaluator on the same day publishes nothing new, and a run that died between publish and mark
republishes at most one batch (the worker's ledger claim makes that harmless).

``record`` returns the ids it inserted now (``Ledger.record_published``); an intent recorded
by a run that died before publishing is republished by the ledger's sweeper
(``Ledger.unpublished``), not by the next run. With ``record`` None every intent is published
and nothing recorded (the load test, where the workers' claim records each intent; tests).

``pipelined=True`` (the evaluator): full batches are recorded, published and marked by one
background thread while the caller evaluates the next batch; at most one batch is in flight,
writes keep their order (a batch's suppressions still go before its intents), and a failure
is raised by the next ``submit`` or ``flush``. ``flush`` waits for everything. The early
compliance check of the next batch may then read a person's history before the previous
batch's flag suppressions are in: it may publish an intent those flags stop, and the worker's
gate, which reads them at the claim, refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import structlog

from dunning.broker.base import Publisher
from dunning.broker.intent_messages import intent_message
from dunning.intents import ContactIntent
from dunning.records import Suppression

__all__ = ["IntentPublisher"]

log = structlog.get_logger(__name__)

Record = Callable[[list[ContactIntent]], set[str]]
Mark = Callable[[list[str]], None]
#: Writes the flag suppressions of a batch and the accounts (person, debt) they were read from,
#: so the ledger can lift what the book no longer sets (``Ledger.record_account_flags``).
Suppress = Callable[[list[Suppression], list[tuple[str, str]]], object]


class IntentPublisher:
    """Buffers intents and publishes them in batches of ``batch_size``.

    Use as a context manager (or call :meth:`flush`) so the last partial batch goes out.
    ``published`` and ``already_known`` count intents over the publisher's life.
    """

    def __init__(
        self,
        publisher: Publisher,
        record: Record | None = None,
        mark: Mark | None = None,
        batch_size: int = 500,
        suppress: Suppress | None = None,
        *,
        pipelined: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._publisher = publisher
        self._record = record
        self._mark = mark
        self._suppress = suppress
        self._batch_size = batch_size
        self._buffer: dict[str, ContactIntent] = {}
        self._suppressions: list[Suppression] = []
        self._accounts: list[tuple[str, str]] = []
        self.published = 0
        self.already_known = 0
        self._pipelined = pipelined
        self._background: ThreadPoolExecutor | None = None
        self._in_flight: Future[object] | None = None

    def submit(
        self,
        intents: Iterable[ContactIntent],
        suppressions: Iterable[Suppression] = (),
        *,
        account: tuple[str, str] | None = None,
    ) -> None:
        """Queue intents (and suppressions from account flags); full batches go out at once.

        ``account`` (person, debt) names the evaluated account the suppressions stand for:
        all of its flags, so the ledger lifts the book-owned ones it no longer sets.
        Suppressions are written before the batch's intents are published, so a worker's gate
        always sees them.
        """
        self._suppressions.extend(suppressions)
        if account is not None:
            self._accounts.append(account)
        if max(len(self._suppressions), len(self._accounts)) >= self._batch_size:
            self._then(self._suppressions_taken())
        for intent in intents:
            # setdefault: the same id twice in one run is one contact.
            self._buffer.setdefault(intent.intent_id, intent)
            if len(self._buffer) >= self._batch_size:
                self._then(self._all_taken())

    def flush(self) -> int:
        """Record, publish and mark what is buffered (after what is in flight); returns how
        many were published by this call. The background thread stops until the next batch."""
        self.close()
        before = self.published
        self._all_taken()()
        return self.published - before

    def _all_taken(self) -> Callable[[], object]:
        """What is buffered, taken now: suppressions first, then the intents they may stop."""
        suppressions, batch = self._suppressions_taken(), self._batch_taken()
        return lambda: (suppressions(), batch())

    def _then(self, write: Callable[[], object]) -> None:
        """Run ``write`` now, or (pipelined) in the background after the write in flight."""
        if not self._pipelined:
            write()
            return
        self._wait()
        if self._background is None:
            self._background = ThreadPoolExecutor(1, thread_name_prefix="intent-publisher")
        self._in_flight = self._background.submit(write)

    def _wait(self) -> None:
        """Wait for the background write in flight; raises what it raised."""
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def _batch_taken(self) -> Callable[[], int]:
        """The write of the buffered intents, taken out of the buffer now."""
        batch = list(self._buffer.values())
        self._buffer.clear()
        return lambda: self._publish_batch(batch)

    def _publish_batch(self, batch: list[ContactIntent]) -> int:
        if not batch:
            return 0
        wanted = self._record(batch) if self._record is not None else {i.intent_id for i in batch}
        fresh = [i for i in batch if i.intent_id in wanted]
        self.already_known += len(batch) - len(fresh)
        if fresh:
            self._publisher.publish_many(intent_message(i) for i in fresh)
            if self._mark is not None:
                self._mark([i.intent_id for i in fresh])
        self.published += len(fresh)
        log.debug("intents_published", published=len(fresh), known=len(batch) - len(fresh))
        return len(fresh)

    def _suppressions_taken(self) -> Callable[[], object]:
        """The write of the buffered suppressions, taken out of the buffer now."""
        items, accounts = self._suppressions, self._accounts
        self._suppressions, self._accounts = [], []
        suppress = self._suppress
        if (items or accounts) and suppress is not None:
            return lambda: suppress(items, accounts)
        return lambda: None

    def close(self) -> None:
        """Wait for the write in flight and stop the background thread (pipelined); what is
        still buffered is not written (:meth:`flush` writes it)."""
        self._wait()
        if self._background is not None:
            self._background.shutdown()
            self._background = None

    def publish(self, intents: Iterable[ContactIntent]) -> int:
        """Submit ``intents`` and flush; returns how many of them were published."""
        before = self.published
        self.submit(intents)
        self.flush()
        return self.published - before

    def __enter__(self) -> IntentPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
