"""The long-lived worker: consume one channel's queue, process, ack, survive the broker.

- Concurrency: the broker delivers up to ``prefetch`` unacked messages; at most
  ``max_in_flight`` are processed at once.
- Ack after processing: a message leaves the queue only once its outcome is in the ledger
  (and any delay or dead-letter copy is confirmed by the broker).
- Connection loss: reconnect with jittered exponential backoff (tenacity), redeclare, resume.
  Messages in hand at the loss come back by redelivery; the ledger makes that safe. Each failed
  attempt logs one ``broker.unreachable`` line saying why and when the next try is; a broker
  that refuses the login or the vhost is not retried (the worker exits with the reason).
- SIGTERM/SIGINT: stop consuming, finish the sends in flight, ack them, close, exit 0. Messages
  not yet started are handed back (reject + requeue); anything still running after the grace
  period is abandoned unacked and returns to the queue when the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from dunning.broker.base import AsyncBroker, Delivery
from dunning.broker.topology import Topology
from dunning.errors import BrokerConnectionError, BrokerError
from dunning.workers.middleware import Middleware, run_after, run_before
from dunning.workers.pipeline import IntentProcessor

__all__ = ["Worker"]

log = structlog.get_logger(__name__)


class Worker:
    def __init__(
        self,
        *,
        queue: str,
        broker: AsyncBroker,
        processor_factory: Callable[[AsyncBroker], IntentProcessor],
        topology: Topology | None,
        prefetch: int,
        max_in_flight: int,
        shutdown_grace_s: float,
        middleware: Sequence[Middleware] = (),
        reconnect_max_wait_s: float = 30.0,
        periodic: Callable[[], Awaitable[None]] | None = None,
        periodic_every_s: float = 60.0,
    ) -> None:
        self.queue = queue
        self.broker = broker
        self.processor = processor_factory(broker)
        self.topology = topology
        self.prefetch = prefetch
        self.shutdown_grace_s = shutdown_grace_s
        self.middleware = tuple(middleware)
        self.reconnect_max_wait_s = reconnect_max_wait_s
        # Housekeeping beside consuming (the reconcile sweep); it must not raise.
        self.periodic = periodic
        self.periodic_every_s = periodic_every_s
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._draining = False
        self.reconnects = 0
        self.ready = asyncio.Event()

    def stop(self) -> None:
        """Begin a graceful stop (safe to call from a signal handler, more than once)."""
        if not self._stopping.is_set():
            log.info("stopping: finishing sends in flight", in_flight=len(self._tasks))
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run(self) -> int:
        """Serve until stopped; returns the process exit code (0 after a clean drain)."""
        housekeeping = asyncio.ensure_future(self._periodic()) if self.periodic else None
        try:
            return await self._serve()
        finally:
            if housekeeping is not None:
                housekeeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await housekeeping
            await self.processor.aclose()

    async def _periodic(self) -> None:
        assert self.periodic is not None
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.periodic_every_s)
            if not self._stopping.is_set():
                await self.periodic()

    async def _serve(self) -> int:
        while not self._stopping.is_set():
            if not await self._connect():
                break
            closed = asyncio.ensure_future(self.broker.wait_closed())
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if self._stopping.is_set():
                closed.cancel()
                await self._drain()
                break
            stopping.cancel()
            self.ready.clear()
            error = closed.exception()
            self.reconnects += 1
            log.warning("broker connection lost, reconnecting", error=repr(error))
        return 0

    async def _connect(self) -> bool:
        """Connect, declare and consume, retrying until connected or asked to stop."""
        # Only a refused connection or a lost link is retried: refused credentials or vhost
        # (BrokerAccessRefusedError) and a topology mismatch end the worker with their reason.
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(BrokerConnectionError),
            wait=wait_exponential_jitter(multiplier=0.2, max=self.reconnect_max_wait_s),
            before_sleep=_report_unreachable,
            sleep=self._pause,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if self._stopping.is_set():
                    return False
                await self.broker.connect()
                if self.topology is not None:
                    await self.broker.declare(self.topology)
                await self.broker.consume(self.queue, prefetch=self.prefetch, handler=self._handle)
        self.ready.set()
        log.info("consuming", queue=self.queue, prefetch=self.prefetch)
        return True

    async def _pause(self, seconds: float) -> None:
        """Wait between connection attempts; a stop ends the wait at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _handle(self, delivery: Delivery) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        async with self._slots:
            if self._draining:
                # Not started before the stop: hand it back untouched.
                await self._settle(self.broker.reject(delivery, requeue=True))
                return
            await self._process(delivery)

    async def _process(self, delivery: Delivery) -> None:
        run_before(self.middleware, delivery)
        started = time.monotonic()
        try:
            outcome = await self.processor.process(delivery)
        except Exception as exc:  # noqa: BLE001  one bad message never stops the worker
            for m in self.middleware:
                m.on_error(delivery, exc)
            # Ledger or broker trouble: give the message back and slow down a little, so a
            # database outage does not spin the queue at full speed.
            await self._settle(self.broker.reject(delivery, requeue=True))
            await asyncio.sleep(0.5)
            return
        run_after(self.middleware, delivery, outcome, time.monotonic() - started)
        await self._settle(self.broker.ack(delivery))

    async def _settle(self, action: asyncio.Future[None] | object) -> None:
        try:
            await action  # type: ignore[misc]  # ack/reject coroutines of the broker
        except BrokerError as exc:
            # The connection is gone: the broker redelivers this message; the ledger dedups.
            log.warning("could not settle message, it will be redelivered", error=str(exc))

    async def _drain(self) -> None:
        self._draining = True
        with contextlib.suppress(BrokerError):
            await self.broker.cancel()
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            done, still = await asyncio.wait(pending, timeout=self.shutdown_grace_s)
            for task in still:
                task.cancel()
            log.info("drained", finished=len(done), abandoned=len(still))
        with contextlib.suppress(BrokerError):
            await self.broker.close()


def _report_unreachable(state: RetryCallState) -> None:
    """One line per backoff step: what is wrong with the broker and when the next try is."""
    error = state.outcome.exception() if state.outcome is not None else None
    wait_s = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "broker.unreachable",
        reason=str(error),
        attempt=state.attempt_number,
        retry_in_s=round(wait_s, 1),
    )
