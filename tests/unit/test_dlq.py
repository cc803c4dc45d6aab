"""Dead-letter tools on the memory broker and a SQLite ledger: read, replay, purge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import (
    QUORUM_DEFAULT_DELIVERY_LIMIT,
    MemoryBroker,
    MemoryPublisher,
)
from dunning.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    QueueSpec,
    Topology,
    build_topology,
    dead_queue,
    work_queue,
)
from dunning.clock import ManualClock
from dunning.errors import PermanentChannelError
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.records import IntentState
from dunning.workers import headers as h
from dunning.workers.dlq import (
    DeadLetterFilter,
    find_dead_letter,
    purge_dead_letters,
    replay_dead_letters,
    summarize_dead_letters,
)
from tests.factories import T0, make_intent

SMS_DEAD = dead_queue(Channel.SMS)


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.server = MemoryBroker()
        self.server.declare(build_topology())
        self.publisher: MemoryPublisher = self.server.publisher()
        self.ledger = Ledger.open(f"sqlite:///{tmp / 'ledger.db'}")
        self.clock = ManualClock(T0)

    def kill(
        self,
        intent: ContactIntent | None = None,
        *,
        body: bytes | None = None,
        reason: str = "invalid number",
        error_class: str = "PermanentChannelError",
        died_at_s: float = 0.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Put one dead letter into dunning.sms.dead as the worker would."""
        headers = h.dead_letter_headers(
            extra or {},
            error_class=error_class,
            reason=reason,
            provider_code="21211",
            attempts=1,
            now=T0 + timedelta(seconds=died_at_s),
            queue=work_queue(Channel.SMS),
        )
        self.publisher.publish_many(
            [
                OutboundMessage(
                    DEAD_LETTER_EXCHANGE,
                    "sms",
                    body if body is not None else encode_intent(intent),  # type: ignore[arg-type]
                    headers,
                    intent.intent_id if intent else None,
                )
            ]
        )

    def died_in_ledger(self, intent: ContactIntent, *, sent: bool = False) -> None:
        """Record ``intent`` as the worker leaves one that was refused (or sent) by the provider."""
        self.ledger.record_published([intent], now=T0)
        claim = self.ledger.claim(intent, worker="w:1", now=T0, reconcile_after_s=60)
        if sent:
            self.ledger.record_sent(
                intent.intent_id, claim.attempt, provider_ref="SM1", status="queued",
                detail={}, now=T0,
            )  # fmt: skip
            return
        exc = PermanentChannelError("invalid number", provider_code="21211")
        self.ledger.record_failure(
            intent.intent_id, claim.attempt, error_class=type(exc).__name__, reason="invalid",
            provider_code="21211", next_state=IntentState.DEAD, now=T0,
        )  # fmt: skip

    def drain(self, queue: str) -> list[Any]:
        out = []
        while (d := self.publisher.get(queue)) is not None:
            out.append(d)
            self.publisher.ack(d)
        return out

    def replay(self, flt: DeadLetterFilter | None = None, **kw: Any) -> Any:
        return replay_dead_letters(
            self.publisher, self.ledger, flt or DeadLetterFilter(), clock=self.clock, **kw
        )


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.ledger.close()


def test_list_counts_by_reason_without_removing_or_reordering(rig: Rig) -> None:
    intents = [make_intent() for _ in range(3)]
    rig.kill(intents[0], reason="invalid number", died_at_s=10)
    rig.kill(intents[1], reason="invalid number", died_at_s=20)
    rig.kill(intents[2], reason="template missing", error_class="ConfigError", died_at_s=5)

    first = summarize_dead_letters(rig.publisher, DeadLetterFilter())
    second = summarize_dead_letters(rig.publisher, DeadLetterFilter())

    assert first.counts == second.counts
    assert first.counts[("sms", "PermanentChannelError", "invalid number")] == 2
    assert first.counts[("sms", "ConfigError", "template missing")] == 1
    assert first.oldest == T0 + timedelta(seconds=5)
    assert first.newest == T0 + timedelta(seconds=20)
    order = [d.message_id for d in rig.drain(SMS_DEAD)]
    assert order == [i.intent_id for i in intents]


def test_show_finds_one_and_leaves_the_queue_as_it_was(rig: Rig) -> None:
    a, b = make_intent(), make_intent()
    rig.kill(a)
    rig.kill(b, reason="boom")
    letter = find_dead_letter(rig.publisher, b.intent_id, DeadLetterFilter())
    assert letter is not None
    assert letter.intent == b
    assert letter.reason == "boom"
    assert find_dead_letter(rig.publisher, "no-such-id", DeadLetterFilter()) is None
    assert rig.publisher.queue_depth(SMS_DEAD) == 2


def test_reading_a_dead_letter_many_times_neither_counts_nor_drops_it(rig: Rig) -> None:
    intent = make_intent()
    rig.kill(intent)
    (before,) = [d.headers for d in _peek_all(rig)]
    for _ in range(25):
        assert summarize_dead_letters(rig.publisher, DeadLetterFilter()).total == 1
        assert find_dead_letter(rig.publisher, intent.intent_id, DeadLetterFilter()) is not None
    (after,) = [d.headers for d in _peek_all(rig)]
    assert after == before
    assert "x-delivery-count" not in after


def test_a_quorum_queue_without_a_limit_drops_at_rabbitmq_4s_default(rig: Rig) -> None:
    # Why dead-letter queues are classic: a quorum one would lose this message to inspection.
    rig.server.declare(Topology((), (QueueSpec("legacy.dead", {"x-queue-type": "quorum"}),)))
    rig.publisher.publish_many([OutboundMessage("", "legacy.dead", b"{}", {})])
    for _ in range(QUORUM_DEFAULT_DELIVERY_LIMIT):
        delivery = rig.publisher.get("legacy.dead")
        assert delivery is not None
        rig.publisher.reject(delivery, requeue=True)
    last = rig.publisher.get("legacy.dead")
    assert last is not None
    assert last.headers["x-delivery-count"] == QUORUM_DEFAULT_DELIVERY_LIMIT
    rig.publisher.reject(last, requeue=True)
    assert rig.publisher.get("legacy.dead") is None


def _peek_all(rig: Rig) -> list[Any]:
    held = []
    while (d := rig.publisher.get(SMS_DEAD)) is not None:
        held.append(d)
    for d in reversed(held):
        rig.publisher.reject(d, requeue=True)
    return held


def test_undecodable_letter_is_listed_with_its_reason(rig: Rig) -> None:
    rig.kill(body=b"{not json", reason="not JSON", error_class="DecodeError")
    summary = summarize_dead_letters(rig.publisher, DeadLetterFilter(reason="decode"))
    assert summary.total == 1


def test_replay_requeues_a_dead_intent_and_publishes_before_removing(rig: Rig) -> None:
    intent = make_intent()
    rig.died_in_ledger(intent)
    rig.kill(intent)

    report = rig.replay()

    assert report.replayed == 1
    assert rig.publisher.queue_depth(SMS_DEAD) == 0
    [copy] = rig.drain(work_queue(Channel.SMS))
    assert copy.body == encode_intent(intent)
    assert copy.headers[h.REPLAY_COUNT] == 1
    assert h.REASON not in copy.headers
    assert "x-death" not in copy.headers
    assert rig.ledger.get_state(intent.intent_id) is IntentState.QUEUED
    assert "replayed" in [e.kind for e in rig.ledger.timeline(intent.intent_id)]


def test_replay_never_resends_a_sent_intent(rig: Rig) -> None:
    intent = make_intent()
    rig.died_in_ledger(intent, sent=True)
    rig.kill(intent)

    report = rig.replay()

    assert (report.replayed, report.obsolete) == (0, 1)
    assert rig.publisher.queue_depth(work_queue(Channel.SMS)) == 0
    assert rig.publisher.queue_depth(SMS_DEAD) == 0
    assert rig.ledger.get_state(intent.intent_id) is IntentState.SENT


def test_replay_cap_holds_unless_forced(rig: Rig) -> None:
    intent = make_intent()
    rig.kill(intent, extra={h.REPLAY_COUNT: 3})

    assert rig.replay(max_replays=3).over_cap == 1
    assert rig.publisher.queue_depth(SMS_DEAD) == 1
    assert rig.replay(max_replays=3, force=True).replayed == 1
    [copy] = rig.drain(work_queue(Channel.SMS))
    assert copy.headers[h.REPLAY_COUNT] == 4


def test_dry_run_changes_nothing(rig: Rig) -> None:
    intent = make_intent()
    rig.died_in_ledger(intent)
    rig.kill(intent)
    report = rig.replay(dry_run=True)
    assert report.replayed == 1
    assert rig.publisher.queue_depth(SMS_DEAD) == 1
    assert rig.publisher.queue_depth(work_queue(Channel.SMS)) == 0
    assert rig.ledger.get_state(intent.intent_id) is IntentState.DEAD


def test_filters_select_by_reason_intent_and_time(rig: Rig) -> None:
    a, b, c = make_intent(), make_intent(), make_intent()
    rig.kill(a, reason="template missing", error_class="ConfigError", died_at_s=0)
    rig.kill(b, reason="invalid number", died_at_s=100)
    rig.kill(c, reason="invalid number", died_at_s=200)

    by_reason = rig.replay(DeadLetterFilter(reason="TEMPLATE"))
    by_time = rig.replay(
        DeadLetterFilter(since=T0 + timedelta(seconds=150), until=T0 + timedelta(seconds=250))
    )
    by_id = rig.replay(DeadLetterFilter(intent_id=b.intent_id))

    assert by_reason.ids == [a.intent_id]
    assert by_time.ids == [c.intent_id]
    assert by_id.ids == [b.intent_id]
    assert rig.publisher.queue_depth(SMS_DEAD) == 0


def test_limit_and_rate(rig: Rig) -> None:
    for _ in range(4):
        rig.kill(make_intent())
    waits: list[float] = []
    report = rig.replay(limit=3, rate_per_s=10.0, sleep=waits.append)
    assert report.replayed == 3
    assert rig.publisher.queue_depth(SMS_DEAD) == 1
    assert waits  # publishes were spaced by the injected sleep
    assert all(0 < w <= 0.1 for w in waits)


def test_purge_removes_and_audits_each(rig: Rig) -> None:
    a, b = make_intent(), make_intent()
    rig.kill(a, reason="invalid number")
    rig.kill(b, reason="template missing")
    purged = purge_dead_letters(
        rig.publisher, rig.ledger, DeadLetterFilter(reason="invalid"), clock=rig.clock
    )
    assert purged == 1
    [left] = rig.drain(SMS_DEAD)
    assert left.message_id == b.intent_id
    assert "dlq_purged" in [e.kind for e in rig.ledger.timeline(a.intent_id)]
