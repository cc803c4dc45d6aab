"""Group commit for the webhook: the receipts of requests that arrive while the previous
transaction is being written go to the ledger together, in one transaction.

Every callback used to be a transaction of its own on a thread of the default pool, so a burst
of callbacks (two or more per send) queued on a handful of threads, each waiting for its own
commit. Now one write is in flight at a time and the next one takes everything that arrived
meanwhile (up to ``max_items``): under load the cost of a commit is shared, at rest a receipt
is written alone as before. A request is answered only after the transaction holding its
receipts committed, so nothing about what a 200 means changed.

A group that fails is written again request by request, so one request's fault (a field the
ledger refuses) fails that request alone and the others are stored as if they had come alone:
each request's receipts are still stored whole or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupWriter"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupWriter(Generic[Item, Result]):
    """Runs ``write`` (blocking: one transaction over a list of items, one result per item) in
    a thread, for the items of as many waiting requests as fit in ``max_items``."""

    def __init__(self, write: Callable[[list[Item]], list[Result]], max_items: int = 256) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self._write = write
        self._max_items = max_items
        self._waiting: list[tuple[list[Item], asyncio.Future[list[Result]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, items: Sequence[Item]) -> list[Result]:
        """Write ``items`` (with whatever else is waiting); returns their results in order."""
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(items), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await future

    def _next_group(self) -> list[tuple[list[Item], asyncio.Future[list[Result]]]]:
        group: list[tuple[list[Item], asyncio.Future[list[Result]]]] = []
        size = 0
        while self._waiting and (not group or size + len(self._waiting[0][0]) <= self._max_items):
            request = self._waiting.pop(0)
            if request[1].done():  # its caller went away (cancelled): nothing to write for it
                continue
            group.append(request)
            size += len(request[0])
        return group

    async def _run(self) -> None:
        while self._waiting:
            group = self._next_group()
            try:
                await self._write_group(group)
            finally:
                for _, future in group:  # cancelled while writing: no caller left hanging
                    if not future.done():
                        future.cancel()

    async def _write_group(
        self, group: list[tuple[list[Item], asyncio.Future[list[Result]]]]
    ) -> None:
        if not group:
            return
        items = [item for request_items, _ in group for item in request_items]
        try:
            results = await asyncio.to_thread(self._write, items)
        except Exception as exc:  # noqa: BLE001  raised in the waiting requests
            if len(group) == 1:
                _settle(group[0][1], exc=exc)
                return
            for request_items, future in group:  # alone, so a fault stays with its request
                try:
                    _settle(future, await asyncio.to_thread(self._write, request_items))
                except Exception as alone:  # noqa: BLE001  raised in its request
                    _settle(future, exc=alone)
            return
        start = 0
        for request_items, future in group:
            _settle(future, results[start : start + len(request_items)])
            start += len(request_items)


def _settle(
    future: asyncio.Future[list[Result]],
    result: list[Result] | None = None,
    *,
    exc: Exception | None = None,
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result if result is not None else [])
