"""IntentPublisher(pipelined=True): batches written in the background, in order, one in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import pytest

from dunning.broker.base import Delivery, OutboundMessage
from dunning.broker.topology import Topology
from dunning.intents import ContactIntent
from dunning.producers.publisher import IntentPublisher
from dunning.records import Suppression
from tests.factories import T0, make_intent


class Recorder:
    """A Publisher that logs each publish and the thread it ran on; ``gate`` holds publishes."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.publishing = threading.Event()

    def declare(self, topology: Topology) -> None: ...

    def publish_many(self, messages: Iterable[OutboundMessage]) -> int:
        self.publishing.set()
        assert self.gate.wait(10)
        sent = list(messages)
        self.threads.add(threading.current_thread().name)
        self.log.append(f"publish {len(sent)}")
        return len(sent)

    def get(self, queue: str) -> Delivery | None:
        return None

    def ack(self, delivery: Delivery) -> None: ...

    def reject(self, delivery: Delivery, *, requeue: bool) -> None: ...

    def queue_depth(self, queue: str) -> int:
        return 0

    def close(self) -> None: ...


def _record(log: list[str]) -> Callable[[list[ContactIntent]], set[str]]:
    def record(batch: list[ContactIntent]) -> set[str]:
        log.append(f"record {len(batch)}")
        return {i.intent_id for i in batch}

    return record


def test_writes_keep_their_order_and_flush_waits_for_them() -> None:
    log: list[str] = []
    broker = Recorder(log)
    publisher = IntentPublisher(
        broker,
        record=_record(log),
        mark=lambda ids: log.append(f"mark {len(ids)}"),
        batch_size=2,
        suppress=lambda items, _accounts: log.append(f"suppress {len(items)}"),
        pipelined=True,
    )
    flagged = Suppression("p-9", None, "cease", "account_flag", T0)
    with publisher:
        publisher.submit([make_intent()], [flagged])
        publisher.submit([make_intent()])
        publisher.submit([make_intent(), make_intent()])
        publisher.submit([make_intent()])
        assert publisher.flush() == 1  # the last, partial batch; the two before it waited for
        assert publisher.published == 5
    assert log == [
        "suppress 1", "record 2", "publish 2", "mark 2",
        "record 2", "publish 2", "mark 2",
        "record 1", "publish 1", "mark 1",
    ]  # fmt: skip
    assert any(name.startswith("intent-publisher") for name in broker.threads)


def test_the_next_batch_is_taken_while_one_is_in_flight() -> None:
    log: list[str] = []
    broker = Recorder(log)
    broker.gate.clear()
    publisher = IntentPublisher(broker, batch_size=2, pipelined=True)
    publisher.submit([make_intent(), make_intent()])  # goes to the background, held at publish
    assert broker.publishing.wait(10)
    publisher.submit([make_intent()])  # buffered meanwhile: the caller is not held
    assert log == []
    broker.gate.set()
    assert publisher.flush() == 1
    publisher.close()
    assert log == ["publish 2", "publish 1"]


def test_a_background_failure_is_raised_by_the_next_call() -> None:
    def record(_batch: list[ContactIntent]) -> set[str]:
        raise RuntimeError("ledger down")

    publisher = IntentPublisher(Recorder([]), record=record, batch_size=1, pipelined=True)
    publisher.submit([make_intent()])
    with pytest.raises(RuntimeError, match="ledger down"):
        publisher.flush()
    publisher.close()
