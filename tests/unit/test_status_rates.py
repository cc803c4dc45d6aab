"""`dunning status`: rates from two samples, idle queues, and what the table says about them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dunning.cli.status import _render
from dunning.ops.queue_status import QueueRate, QueueStats, StatusReport, queue_rates
from tests.factories import T0

CHANNELS = ("sms", "voice", "email", "letter")


def report(
    taken_s: float = 0,
    source: str = "management",
    problem: str | None = None,
    **queues: QueueStats,
) -> StatusReport:
    """A report of every channel; ``queues`` (by queue name, dots as __) replace the defaults."""
    out = StatusReport(source, taken_at=T0 + timedelta(seconds=taken_s), management_problem=problem)
    for channel in CHANNELS:
        work, dead = f"dunning.{channel}", f"dunning.{channel}.dead"
        out.channels[channel] = (
            queues.get(work.replace(".", "__"), QueueStats(work, 0, 0, 1)),
            queues.get(dead.replace(".", "__"), QueueStats(dead, 0, 0, 0)),
        )
    return out


def by_name(rates: list[QueueRate]) -> dict[str, QueueRate]:
    return {rate.name: rate for rate in rates}


def test_rates_in_out_and_net_from_publish_counts_and_depths() -> None:
    before = report(
        dunning__sms=QueueStats("dunning.sms", 100, 10, 2, published=1000),
        dunning__sms__dead=QueueStats("dunning.sms.dead", 2, 0, 0),
    )
    after = report(
        10,
        dunning__sms=QueueStats("dunning.sms", 80, 10, 2, published=1050),
        dunning__sms__dead=QueueStats("dunning.sms.dead", 4, 0, 0),
    )
    rates = by_name(queue_rates(before, after, elapsed_s=10))
    sms = rates["dunning.sms"]
    assert sms.in_per_s == pytest.approx(5.0)  # 50 published in 10 s
    assert sms.net_per_s == pytest.approx(-2.0)  # depth 110 -> 90
    assert sms.out_per_s == pytest.approx(7.0)  # 50 in, depth down by 20: 70 left
    dead = rates["dunning.sms.dead"]
    assert dead.net_per_s == pytest.approx(0.2)
    assert (dead.in_per_s, dead.out_per_s) == (None, None)  # no publish counter
    assert rates["dunning.voice"].net_per_s == 0


def test_passive_declare_samples_give_the_net_rate_only() -> None:
    before = report(source="amqp", dunning__email=QueueStats("dunning.email", 30, None, 0))
    after = report(5, source="amqp", dunning__email=QueueStats("dunning.email", 45, None, 0))
    email = by_name(queue_rates(before, after, elapsed_s=5))["dunning.email"]
    assert email == QueueRate("dunning.email", None, None, 3.0)


def test_a_missing_queue_or_no_elapsed_time_gives_no_numbers() -> None:
    before = report(dunning__letter=QueueStats("dunning.letter", None, missing=True))
    after = report(5)
    letter = by_name(queue_rates(before, after, elapsed_s=5))["dunning.letter"]
    assert (letter.in_per_s, letter.out_per_s, letter.net_per_s) == (None, None, None)
    assert queue_rates(before, after, elapsed_s=0) == []


def test_work_queues_with_ready_messages_and_no_consumers_are_picked_out() -> None:
    sample = report(
        dunning__sms=QueueStats("dunning.sms", 3, None, 0),
        dunning__voice=QueueStats("dunning.voice", 5, None, 2),
        dunning__email=QueueStats("dunning.email", 0, None, 0),
        dunning__letter=QueueStats("dunning.letter", None, missing=True),
        dunning__sms__dead=QueueStats("dunning.sms.dead", 9, None, 0),  # never consumed
    )
    assert [q.name for q in sample.without_consumers()] == ["dunning.sms"]


def test_the_table_is_stamped_explains_passive_counts_and_shows_rates(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    problem = "not reachable at http://mq:15672 ([Errno 111] Connection refused)"
    before = report(source="amqp", problem=problem)
    after = report(
        5,
        source="amqp",
        problem=problem,
        dunning__sms=QueueStats("dunning.sms", 3, None, 0),
    )
    _render(after, 0, queue_rates(before, after, elapsed_s=5), clear=False)
    out = capsys.readouterr().out
    assert "dunning queues at 2026-11-28 02:00:05 UTC (source: amqp)" in out
    assert (
        f"management API {problem}: counts from passive declares; unacked and the oldest "
        "work-queue message unknown (-)"
    ) in out
    assert "warning: dunning.sms holds 3 ready message(s) and has no consumers" in out
    assert "net/s" in out
    assert "+0.6" in out  # sms: 0 -> 3 in 5 s
