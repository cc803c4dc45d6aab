"""Rate limits: the GCRA arithmetic, the in-process limiter on a fake clock, the config keys,
and the worker's promise that a limit wait never spends an attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dunning.channels_toml import ChannelsToml
from dunning.errors import ConfigError
from dunning.intents import Channel, Recipient
from dunning.settings import Settings
from dunning.workers.assembly import build_limiter, channel_limits
from dunning.workers.ratelimit.config import ChannelLimits
from dunning.workers.ratelimit.limiter import (
    GcraLimit,
    LocalRateLimiter,
    Unlimited,
    recipient_token,
    reserve,
)
from tests.factories import make_intent


class FakeTime:
    """A clock that only moves when the limiter sleeps: no real waiting in these tests."""

    def __init__(self) -> None:
        self.now_s = 100.0
        self.slept: list[float] = []
        self.on_sleep: list[object] = []

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds
        for hook in self.on_sleep:
            hook()  # type: ignore[operator]


def test_reservations_space_sends_by_the_interval() -> None:
    limits = {"k": GcraLimit(10.0)}
    tats: dict[str, float] = {}
    instants = []
    for _ in range(4):
        at, tats = reserve(tats, limits, now=0.0)
        instants.append(round(at, 6))
    assert instants == [0.0, 0.1, 0.2, 0.3]


def test_burst_lets_that_many_through_at_once_then_the_rate_applies() -> None:
    limits = {"k": GcraLimit(10.0, burst=3)}
    tats: dict[str, float] = {}
    instants = []
    for _ in range(5):
        at, tats = reserve(tats, limits, now=0.0)
        instants.append(round(at, 6))
    assert instants == [0.0, 0.0, 0.0, 0.1, 0.2]


def test_one_instant_serves_every_key_and_the_slowest_key_decides() -> None:
    limits = {"fast": GcraLimit(100.0), "slow": GcraLimit(1.0)}
    at1, tats = reserve({}, limits, now=0.0)
    at2, tats = reserve(tats, limits, now=0.0)
    assert (at1, at2) == (0.0, 1.0)
    # the fast key is booked at the common instant, not at once: its budget was not spent early
    assert tats["fast"] == pytest.approx(1.01)


def test_a_pause_moves_the_reservation_past_it() -> None:
    at, _ = reserve({}, {"k": GcraLimit(10.0)}, now=5.0, paused_until=8.0)
    assert at == 8.0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (float("inf"), 1), (1.0, 0)])
def test_limit_refuses_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        GcraLimit(rate, burst)


async def test_local_limiter_waits_for_its_slot_and_reports_the_wait() -> None:
    fake = FakeTime()
    limiter = LocalRateLimiter({"sms:account:A": 4.0}, clock=fake.clock, sleep=fake.sleep)
    waits = [await limiter.acquire("sms:account:A") for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.25, 0.25, 0.25, 0.25])
    assert fake.now_s == pytest.approx(101.0)


async def test_local_limiter_leaves_unknown_keys_unlimited() -> None:
    fake = FakeTime()
    limiter = LocalRateLimiter({"a": 1.0}, clock=fake.clock, sleep=fake.sleep)
    assert [await limiter.acquire("b") for _ in range(10)] == [0.0] * 10
    assert await Unlimited().acquire("a", "b") == 0.0


async def test_pause_holds_every_send_on_the_key_until_it_ends() -> None:
    fake = FakeTime()
    limiter = LocalRateLimiter({"acct": 100.0}, clock=fake.clock, sleep=fake.sleep)
    limiter.pause("acct", 3.0)
    waited = await limiter.acquire("acct", "sender")
    assert waited == pytest.approx(3.0)
    limiter.pause("other", 2.0)  # a key with no rate can still be paused
    assert await limiter.acquire("other") == pytest.approx(2.0)


async def test_a_pause_during_the_wait_sends_the_waiter_behind_it() -> None:
    fake = FakeTime()
    limiter = LocalRateLimiter({"acct": 1.0}, clock=fake.clock, sleep=fake.sleep)
    await limiter.acquire("acct")  # takes the free slot; the next one waits a second
    fake.on_sleep.append(lambda: limiter.pause("acct", 5.0) if len(fake.slept) == 1 else None)
    waited = await limiter.acquire("acct")
    assert waited >= 5.0  # slept 1 s, found the 429 pause, slept past it


def _limits(data: dict[str, Any], channel: Channel, *, account: str) -> ChannelLimits:
    section = ChannelsToml(Path("channels.toml"), data).rate_limits(channel)
    return ChannelLimits.of(channel, section, account=account)


def test_channel_limits_keys_and_rates() -> None:
    data = {
        "rate_limits": {
            "sms": {
                "account_per_s": 50,
                "sender_per_s": 1,
                "recipient_per_s": 0.5,
                "senders": {"MG1": 30},
            }
        }
    }
    limits = _limits(data, Channel.SMS, account="AC1")
    intent = make_intent(Channel.SMS, recipient=Recipient(name="x", phone="+8613800000001"))
    keys = limits.keys(intent, "MG1")
    assert keys[0] == "sms:account:AC1"
    assert keys[1] == "sms:sender:MG1"
    assert keys[2] == f"sms:recipient:{recipient_token('+8613800000001')}"
    assert "8613800000001" not in keys[2]  # no phone number in a Redis key
    assert [limits.rate_for(k) for k in keys] == [50.0, 30.0, 0.5]
    assert limits.rate_for("sms:sender:+15005550006") == 1.0
    assert limits.rate_for("voice:account:AC1") is None


def test_no_table_means_no_limits_and_only_the_account_key() -> None:
    limits = _limits({}, Channel.EMAIL, account="smtp")
    intent = make_intent(Channel.EMAIL)
    assert limits.keys(intent, None) == ("email:account:smtp",)
    assert isinstance(build_limiter(Settings(), limits), Unlimited)


@pytest.mark.parametrize(
    "table",
    [{"account_per_s": 0}, {"sender_per_s": "fast"}, {"burst": 0}, {"per_s": 1}],
)
def test_bad_rate_limit_config_names_the_key(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"rate_limits\.sms"):
        _limits({"rate_limits": {"sms": table}}, Channel.SMS, account="A")


def test_shipped_config_limits_long_codes_and_the_account(tmp_path: Path) -> None:
    settings = Settings(config_dir=Path(__file__).parents[2] / "config")
    limits = channel_limits(settings, Channel.SMS)
    assert limits.account_key == f"sms:account:{settings.twilio_account_sid}"
    assert limits.rate_for("sms:sender:+15005550006") == 1.0
    assert isinstance(build_limiter(settings, limits), LocalRateLimiter)


async def test_a_worker_held_by_the_limiter_sends_each_intent_once_on_attempt_one(
    tmp_path: Path,
) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from dunning.broker.base import OutboundMessage
    from dunning.broker.memory.server import MemoryBroker
    from dunning.broker.topology import INTENTS_EXCHANGE, build_topology, work_queue
    from dunning.channels.base import CallbackChannel, SendResult
    from dunning.clock import SystemClock
    from dunning.intents import ContactIntent, encode_intent
    from dunning.ledger import Ledger
    from dunning.workers.assembly import WorkerParts, build_worker
    from dunning.workers.middleware import OutcomeCounter

    server = MemoryBroker()
    server.declare(build_topology())
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    attempts: list[int] = []

    async def send(intent: ContactIntent, attempt: int) -> SendResult:
        attempts.append(attempt)
        return SendResult(provider_ref=f"SM{len(attempts):032d}", status="queued")

    now = datetime.now(UTC)
    intents = [
        make_intent(Channel.SMS, created_at=now, expires_at=now + timedelta(hours=1))
        for _ in range(6)
    ]
    server.publisher().publish_many(
        OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(i), {}) for i in intents
    )
    counter = OutcomeCounter()
    limiter = LocalRateLimiter(lambda key: 20.0 if ":account:" in key else None)
    parts = WorkerParts(
        channel=Channel.SMS,
        adapter=CallbackChannel(Channel.SMS, send),
        ledger=ledger,
        clock=SystemClock(),
        broker=server.client(),
        limiter=limiter,
        middleware=(counter,),
    )
    worker = build_worker(Settings(shutdown_grace_s=5), parts, declare=False)
    task = asyncio.create_task(worker.run())
    try:
        await counter.wait_until(lambda: sum(counter.counts.values()) == 6, 10)
    finally:
        worker.stop()
        assert await task == 0
        ledger.close()
    assert attempts == [1] * 6  # waiting for the limiter never cost an attempt
    assert dict(counter.counts) == {"sent": 6}
    assert server.queue_depth(work_queue(Channel.SMS)) == 0
