"""The long-lived worker: consume one channel's queue, process, ack, survive the broker.

- Concurrency: the broker delivers up to ``prefetch`` unacked messages; at most
  ``max_in_flight`` are processed at once.
- Ack after processing: a message leaves the queue only once its outcome is in the ledger
  (and any delay or dead-letter copy is confirmed by the broker).
- Connection loss: reconnect with jittered exponential backoff (tenacity), redeclare, resume.
  Messages in hand at the loss come back by redelivery; the ledger makes that safe. Each failed
  attempt logs one ``broker.unreachable`` line saying why and when the next try is; a broker
  that refuses the login or the vhost is not retried (the worker exits with the reason).
- Infrastructure faults (the ledger, the rate limiter's store, a broker publish): a failed
  message is checked against the readiness probes. When a probe fails (or the broker refused a
  publish) the worker pauses: it cancels its consumer, parks the messages in hand through a
  delay queue (:mod:`dunning.workers.faults`; never a requeue, which RabbitMQ counts against the
  delivery limit), probes with jittered exponential backoff (tenacity) and consumes again once
  every probe passes. A message that fails while every probe passes is retried in place a few
  times, then dead-lettered with its real error.
- SIGTERM/SIGINT: stop consuming, finish the sends in flight, ack them, close, exit 0. Messages
  not yet started are handed back (reject + requeue; parked instead while paused); anything
  still running after the grace period is abandoned unacked and returns to the queue when the
  connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

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
from dunning.workers.faults import dead_letter_failed, park
from dunning.workers.health import ReadinessCheck
from dunning.workers.middleware import Middleware, run_after, run_before
from dunning.workers.pause import Pause
from dunning.workers.pipeline import IntentProcessor, Outcome

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
        probes: Mapping[str, ReadinessCheck] | None = None,
        fault_backoff_s: float = 0.5,
        fault_backoff_max_s: float = 30.0,
        message_retries: int = 3,
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
        self._jobs: list[tuple[Callable[[], Awaitable[None]], float]] = []
        self.message_retries = message_retries
        self._stopping = asyncio.Event()
        # Infrastructure the worker needs besides the broker (ledger, rate-limiter store).
        self.pause = Pause(
            probes or {},
            stopping=self._stopping,
            stop_consuming=self._stop_consuming,
            start_consuming=self._start_consuming,
            backoff_s=fault_backoff_s,
            backoff_max_s=fault_backoff_max_s,
        )
        self._consume_lock = asyncio.Lock()
        self._connected = False
        self._consuming = False
        self._epoch = 0  # connections lost so far: deliveries of an older epoch are stale
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
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

    def add_periodic(self, job: Callable[[], Awaitable[None]], every_s: float) -> None:
        """Run ``job`` every ``every_s`` seconds beside consuming (it must not raise)."""
        self._jobs.append((job, every_s))

    @property
    def probes(self) -> Mapping[str, ReadinessCheck]:
        return self.pause.probes

    @property
    def paused_reason(self) -> str | None:
        """Why consuming is paused (an infrastructure fault), or None."""
        return self.pause.reason

    @property
    def fault_backoff_max_s(self) -> float:
        """The longest wait between readiness probes while paused."""
        return self.pause.backoff_max_s

    @fault_backoff_max_s.setter
    def fault_backoff_max_s(self, seconds: float) -> None:
        self.pause.backoff_max_s = seconds

    def not_ready_reason(self) -> str | None:
        """None while consuming; else why not (paused for a fault, or not connected)."""
        if self.pause.reason is not None:
            return f"consuming paused: {self.pause.reason}"
        return None if self.ready.is_set() else "not connected to the broker (reconnecting)"

    async def run(self) -> int:
        """Serve until stopped; returns the process exit code (0 after a clean drain)."""
        jobs = list(self._jobs)
        if self.periodic is not None:
            jobs.append((self.periodic, self.periodic_every_s))
        housekeeping = [asyncio.ensure_future(self._every(job, s)) for job, s in jobs]
        try:
            return await self._serve()
        finally:
            for task in housekeeping:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.pause.aclose()
            await self.processor.aclose()

    async def _every(self, job: Callable[[], Awaitable[None]], every_s: float) -> None:
        while not self._stopping.is_set():
            await self._wait_or_stop(every_s)
            if not self._stopping.is_set():
                await job()

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
            self._connected = self._consuming = False
            self._epoch += 1
            # Messages held in a pause came on the lost connection and the broker has them back:
            # wake their tasks (they see the new epoch and let go).
            self.pause.wake()
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
            sleep=self._wait_or_stop,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if self._stopping.is_set():
                    return False
                await self.broker.connect()
                if self.topology is not None:
                    await self.broker.declare(self.topology)
                self._connected = True
                # While paused for a fault, the recovery consumes once the probes pass.
                await self._start_consuming()
        return True

    async def _start_consuming(self) -> None:
        async with self._consume_lock:
            if self._consuming or not self._connected or self.pause.reason is not None:
                return
            if self._stopping.is_set():
                return
            await self.broker.consume(self.queue, prefetch=self.prefetch, handler=self._handle)
            self._consuming = True
            self.ready.set()
        log.info("consuming", queue=self.queue, prefetch=self.prefetch)

    async def _stop_consuming(self) -> None:
        async with self._consume_lock:
            self.ready.clear()
            if self._consuming:
                self._consuming = False
                with contextlib.suppress(BrokerError):  # a lost link stops it anyway
                    await self.broker.cancel()

    async def _wait_or_stop(self, seconds: float) -> None:
        """Wait ``seconds``; a stop ends the wait at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _handle(self, delivery: Delivery) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        async with self._slots:
            if self.pause.reason is not None:
                # Taken before the pause began and not started: give it back uncounted.
                await self._process(delivery, hand_back=True)
            elif self._draining:
                # Not started before the stop: hand it back untouched.
                await self._settle(self.broker.reject(delivery, requeue=True))
            else:
                await self._process(delivery)

    async def _process(self, delivery: Delivery, *, hand_back: bool = False) -> None:
        """Process until an outcome is acked, or the message is parked or dead-lettered."""
        epoch = self._epoch
        failures = 0
        while True:
            if hand_back:
                if await self._hand_back(delivery, epoch):
                    return
                hand_back = False  # every probe passes again: process it, no attempt spent
            error = await self._attempt(delivery)
            if error is None:
                return
            fault = await self.pause.diagnose(error)
            if fault is not None:
                self.pause.begin(fault)
                hand_back = True
                continue
            failures += 1
            if self._stopping.is_set():
                await self._settle(self.broker.reject(delivery, requeue=True))
                return
            if failures > self.message_retries:
                await self._dead_letter(delivery, error)
                return
            # The infrastructure answers: a blip (a stale pooled connection) or this message.
            await self._wait_or_stop(0.2 * 2**failures * random.uniform(0.5, 1.5))
            if epoch != self._epoch:
                return  # its connection is gone: the broker redelivers it

    async def _attempt(self, delivery: Delivery) -> Exception | None:
        """Process once; ack on an outcome. Returns the error when processing raised."""
        run_before(self.middleware, delivery)
        started = time.monotonic()
        try:
            outcome = await self.processor.process(delivery)
        except Exception as exc:  # noqa: BLE001  one bad message never stops the worker
            for m in self.middleware:
                m.on_error(delivery, exc)
            return exc
        run_after(self.middleware, delivery, outcome, time.monotonic() - started)
        await self._settle(self.broker.ack(delivery))
        self.pause.processed()
        return None

    async def _hand_back(self, delivery: Delivery, epoch: int) -> bool:
        """Park ``delivery``; if the broker refuses the copy, hold it until the pause ends.

        True when the message is dealt with (parked, or no longer ours); False when the pause
        ended with the message still in hand: process it again.
        """
        while True:
            if epoch != self._epoch:
                return True  # its connection is gone: the broker has it back already
            try:
                await park(self.broker, delivery, self.processor.channel, self.pause.cooldown_s())
            except BrokerError as exc:
                if self._stopping.is_set():
                    log.warning("could not park message at stop", error=str(exc))
                    return True  # unacked: it returns to the queue when the connection closes
                self.pause.begin(f"broker: {exc}")
            else:
                await self._settle(self.broker.ack(delivery))
                return True
            await self.pause.wait()
            if not self._stopping.is_set():
                return epoch != self._epoch

    async def _dead_letter(self, delivery: Delivery, error: Exception) -> None:
        """Dead-letter a message that fails while the infrastructure answers: its real cause."""
        processor = self.processor
        try:
            reason = await dead_letter_failed(
                self.broker, delivery, processor.channel, error, now=processor.clock.now()
            )
        except BrokerError as exc:
            # Cannot say why: hand it back through the ordinary requeue (counted).
            log.warning("could not dead-letter message, requeued", error=str(exc))
            await self._settle(self.broker.reject(delivery, requeue=True))
            return
        await self._settle(self.broker.ack(delivery))
        log.error("processing failed repeatedly, dead-lettered", reason=reason)
        outcome = Outcome("dead", reason, delivery.message_id)
        run_before(self.middleware, delivery)
        run_after(self.middleware, delivery, outcome, 0.0)

    async def _settle(self, action: asyncio.Future[None] | object) -> None:
        try:
            await action  # type: ignore[misc]  # ack/reject coroutines of the broker
        except BrokerError as exc:
            # The connection is gone: the broker redelivers this message; the ledger dedups.
            log.warning("could not settle message, it will be redelivered", error=str(exc))

    async def _drain(self) -> None:
        self._draining = True
        await self._stop_consuming()
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
