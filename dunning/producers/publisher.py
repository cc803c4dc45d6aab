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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
            self._write_suppressions()
        for intent in intents:
            # setdefault: the same id twice in one run is one contact.
            self._buffer.setdefault(intent.intent_id, intent)
            if len(self._buffer) >= self._batch_size:
                self.flush()

    def flush(self) -> int:
        """Record, publish and mark what is buffered; returns how many were published."""
        self._write_suppressions()
        if not self._buffer:
            return 0
        batch = list(self._buffer.values())
        self._buffer.clear()
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

    def _write_suppressions(self) -> None:
        if (self._suppressions or self._accounts) and self._suppress is not None:
            self._suppress(self._suppressions, self._accounts)
        self._suppressions, self._accounts = [], []

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
        if exc_type is None:
            self.flush()
