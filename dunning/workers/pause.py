"""A worker's pause while its infrastructure is down: diagnose, back off, probe, resume.

When a message fails, :meth:`Pause.diagnose` tells an infrastructure fault (a broker that
refused a publish, or a failing readiness probe: ledger database, rate-limiter store) from a
fault of the message. On an infrastructure fault the worker calls :meth:`Pause.begin`: the
consumer is cancelled at once, then the probes run with jittered exponential backoff
(tenacity) until every one passes, and the consumer starts again. Each pause that follows
another with no message processed in between waits longer before its first probe, so a fault
the probes cannot see (a broker that accepts connections but refuses publishes) is retried
ever more slowly instead of spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping

import structlog
from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_result
from tenacity import wait_exponential_jitter as _wait_exponential_jitter

from dunning.errors import BrokerError
from dunning.workers.health import ReadinessCheck, failing_checks

__all__ = ["Pause"]

log = structlog.get_logger(__name__)


class Pause:
    """The pause state of one worker; ``reason`` is None while it consumes normally.

    ``stop_consuming`` and ``start_consuming`` cancel and restart the worker's consumer;
    ``stopping`` ends every wait at once.
    """

    def __init__(
        self,
        probes: Mapping[str, ReadinessCheck],
        *,
        stopping: asyncio.Event,
        stop_consuming: Callable[[], Awaitable[None]],
        start_consuming: Callable[[], Awaitable[None]],
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.probes = dict(probes)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.reason: str | None = None
        self._stopping = stopping
        self._stop_consuming = stop_consuming
        self._start_consuming = start_consuming
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._in_row = 0  # pauses without a message processed in between
        self._recovery: asyncio.Task[None] | None = None
        self._diagnosis: asyncio.Future[dict[str, str]] | None = None

    async def diagnose(self, error: Exception) -> str | None:
        """Why ``error`` is the infrastructure's fault, or None when every probe passes."""
        if isinstance(error, BrokerError):
            return f"broker: {error}"
        if self.reason is not None:
            return self.reason
        failures = await self.probe()
        return "; ".join(f"{name}: {why}" for name, why in failures.items()) or None

    async def probe(self) -> dict[str, str]:
        """The failing probes; concurrent callers (a fault hits every send in flight) share
        one run."""
        if self._diagnosis is None or self._diagnosis.done():
            self._diagnosis = asyncio.ensure_future(failing_checks(self.probes))
        return await asyncio.shield(self._diagnosis)

    def begin(self, reason: str) -> None:
        """Pause for ``reason`` (no-op while paused or stopping): stop consuming, recover."""
        if self.reason is not None or self._stopping.is_set():
            return
        self.reason = reason
        self._resumed.clear()
        self._in_row += 1
        log.warning("worker.paused", reason=reason)
        self._recovery = asyncio.ensure_future(self._recover())

    def processed(self) -> None:
        """A message was processed: the next pause starts with the shortest wait again."""
        self._in_row = 0

    def cooldown_s(self) -> float:
        """The wait before a pause's first probe (and the hop a parked message takes)."""
        base = self.backoff_s * 2.0 ** max(self._in_row - 1, 0)
        return min(self.backoff_max_s, base * random.uniform(1.0, 1.5))

    async def wait(self) -> None:
        """Return when the pause ends, the worker stops, or :meth:`wake` is called."""
        resumed = asyncio.ensure_future(self._resumed.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({resumed, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            resumed.cancel()
            stopping.cancel()

    def wake(self) -> None:
        """Wake every :meth:`wait` (the connection their messages came on is gone)."""
        woken, self._resumed = self._resumed, asyncio.Event()
        woken.set()
        if self.reason is None:
            self._resumed.set()

    async def aclose(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _recover(self) -> None:
        await self._stop_consuming()
        await self._sleep(self.cooldown_s())
        retrying = AsyncRetrying(
            retry=retry_if_result(bool),
            wait=_wait_exponential_jitter(multiplier=self.backoff_s, max=self.backoff_max_s),
            stop=lambda _state: self._stopping.is_set(),
            before_sleep=_report_not_ready,
            sleep=self._sleep,
        )
        try:
            await retrying(self.probe)
        except RetryError:
            return  # stopping
        log.info("worker.resumed", after=self.reason)
        self.reason = None
        self._resumed.set()
        try:
            await self._start_consuming()
        except BrokerError as exc:
            self.begin(f"broker: {exc}")


def _report_not_ready(state: RetryCallState) -> None:
    """One line per probe while paused: which checks fail and when the next probe is."""
    failures = state.outcome.result() if state.outcome is not None else {}
    wait_s = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "worker.not_ready",
        failing=failures,
        attempt=state.attempt_number,
        retry_in_s=round(wait_s, 1),
    )
