"""Claims of the deliveries that arrive together, decided in one ledger transaction.

Each delivery awaits its own claim; the first to ask waits ``gather_s`` (1 ms) for company, then
every claim asked for meanwhile (up to ``max_batch``) goes to the ledger as one batch, and the
claims asked for while a batch is being written form the next one. A claim resolves only after
the transaction holding it committed, so a delivery still reaches the provider only once its
claim is durable (docs/design.md, "Claims of the messages that arrive together share one
transaction"). Without a batched claim (SQLite), each claim runs alone in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from dunning.intents import Channel, ContactIntent
from dunning.ledger.claim_batch_pg import ClaimRequest
from dunning.ledger.queries import Claim
from dunning.records import ContactHistory, GateDecision
from dunning.workers.ports import ClaimView, LedgerPort

__all__ = ["BatchClaimLedger", "ClaimBatcher"]

_Pending = tuple[ClaimRequest, "asyncio.Future[ClaimView]"]


def batchable(intent: ContactIntent) -> bool:
    """Whether the batch's history read is all the gate needs for ``intent``. A third-party
    collector's intent also needs when each debt's validation notice went out, however long ago,
    and a bureau intent a year's history (docs/legal.md, docs/bureau.md): both take the
    one-intent claim, which reads those."""
    return intent.collector_role == "first_party" and intent.channel is not Channel.BUREAU


class _Batch(Protocol):
    async def claim_many(self, requests: Sequence[ClaimRequest]) -> list[Claim | None]: ...
    async def aclose(self) -> None: ...


@runtime_checkable
class BatchClaimLedger(Protocol):
    """A ledger that can claim many intents per transaction (:class:`dunning.ledger.Ledger`)."""

    def batched_claims(
        self, *, worker: str, reconcile_after_s: float, application_name: str = ...
    ) -> _Batch | None: ...


class ClaimBatcher:
    """Gathers concurrent :meth:`claim` calls into one ledger transaction per batch."""

    def __init__(
        self,
        ledger: LedgerPort,
        *,
        worker: str,
        reconcile_after_s: float,
        application_name: str = "dunning",
        max_batch: int = 200,
        gather_s: float = 0.001,
    ) -> None:
        self._ledger = ledger
        self._worker = worker
        self._reconcile_after_s = reconcile_after_s
        self._batch: _Batch | None = None
        if isinstance(ledger, BatchClaimLedger):
            self._batch = ledger.batched_claims(
                worker=worker,
                reconcile_after_s=reconcile_after_s,
                application_name=application_name,
            )
        self._max_batch = max_batch
        self._gather_s = gather_s
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # transactions written (for tests and profiling)

    @property
    def batched(self) -> bool:
        return self._batch is not None

    async def claim(
        self,
        intent: ContactIntent,
        *,
        now: datetime,
        gate: Callable[[ContactHistory], GateDecision] | None,
    ) -> ClaimView:
        """The ledger's claim of ``intent``; returns once it is committed."""
        if self._batch is None or not batchable(intent):
            return await asyncio.to_thread(self._claim_one, ClaimRequest(intent, now, gate))
        future: asyncio.Future[ClaimView] = asyncio.get_running_loop().create_future()
        self._pending.append((ClaimRequest(intent, now, gate), future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return await future

    def _claim_one(self, request: ClaimRequest) -> ClaimView:
        return self._ledger.claim(
            request.intent,
            worker=self._worker,
            now=request.now,
            reconcile_after_s=self._reconcile_after_s,
            gate=request.gate,
        )

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Let the deliveries that are already here reach their claim before writing.
            await asyncio.sleep(self._gather_s)
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        assert self._batch is not None
        try:
            claims = await self._batch.claim_many([request for request, _ in batch])
        except Exception as exc:  # noqa: BLE001  every waiter gets the error, the batcher lives on
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        alone: list[_Pending] = []
        for (request, future), claim in zip(batch, claims, strict=True):
            if claim is None:
                alone.append((request, future))
            elif not future.done():  # a waiter cancelled by a shutdown past its grace period
                future.set_result(claim)
        for request, future in alone:  # after the batch committed: they may share its people
            try:
                view = await asyncio.to_thread(self._claim_one, request)
            except Exception as exc:  # noqa: BLE001  that waiter gets the error
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(view)

    async def aclose(self) -> None:
        """Stop the batcher and close its connection (call after the claims in flight ended)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._batch is not None:
            await self._batch.aclose()
