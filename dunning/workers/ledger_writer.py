"""Group commit of ``record_sent``: the outcomes of sends that finish together, one transaction.

Each send awaits its own future, resolved only once the transaction holding its record has
committed (or failed, with the ledger's error), so the worker still acks a message only after
its outcome is durable. Batches form by themselves: records arriving while one batch is being
written wait for the next, so the batch size follows the load with no added delay at low load.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

from dunning.ledger.group_commit import SentRecord

__all__ = ["SentRecord", "SentWriter"]


class _BatchLedger(Protocol):
    def record_sent_many(self, records: Sequence[SentRecord]) -> None: ...


class _AsyncSends(Protocol):
    async def record_many(self, records: Sequence[SentRecord]) -> bool: ...
    async def aclose(self) -> None: ...


class SentWriter:
    """Coalesces concurrent :meth:`record_sent` calls into ``record_sent_many`` transactions.

    ``max_batch`` bounds one transaction (and so the work lost to one failure). On PostgreSQL
    the batch is written on the event loop over the ledger's async connection for sends
    (``Ledger.batched_sends``); elsewhere, or when a batch meets receipts that came before
    their send, ``record_sent_many`` runs in the loop's default executor.
    """

    def __init__(
        self, ledger: _BatchLedger, *, max_batch: int = 200, application_name: str = "dunning"
    ) -> None:
        self._ledger = ledger
        make = getattr(ledger, "batched_sends", None)
        self._async: _AsyncSends | None = (
            None if make is None else make(application_name=application_name)
        )
        self._max_batch = max_batch
        self._pending: list[tuple[SentRecord, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions written (for tests and profiling)

    async def record_sent(self, record: SentRecord) -> None:
        """Return once ``record`` is committed; raises the ledger's error when it was not."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write(batch)

    async def _write(self, batch: list[tuple[SentRecord, asyncio.Future[None]]]) -> None:
        try:
            records = [r for r, _ in batch]
            if self._async is None or not await self._async.record_many(records):
                await asyncio.to_thread(self._ledger.record_sent_many, records)
        except Exception as exc:  # noqa: BLE001  every waiter gets the error, the writer lives on
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        for _, future in batch:
            if not future.done():  # a waiter cancelled by a shutdown past its grace period
                future.set_result(None)

    async def aclose(self) -> None:
        """Stop the writer task (call after the sends in flight finished)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._async is not None:
            await self._async.aclose()
