"""Property tests through the real worker pipeline: window and suppressions hold at send time.

Each example builds a random book (persons, jurisdictions, time zones, channels, debts), random
suppressions on file, and a few random instants. SMS, voice and email workers (build_worker,
memory broker, a SQLite ledger, the real ComplianceGate over config/compliance.toml, one
ManualClock) take the intents published at each instant; a CallbackChannel records the clock
at every send. Whatever the gate decides, no send may fall outside the contact window in the
person's local time, and no send may reach a suppressed person, debt or channel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dunning.broker.base import OutboundMessage
from dunning.broker.memory.server import MemoryBroker
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology
from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import ManualClock
from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.records import Suppression
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.ratelimit.limiter import Unlimited
from tests.factories import make_intent

CONFIG = Path(__file__).resolve().parents[2] / "config"
PACKS = load_packs(CONFIG / "compliance.toml")
GATE = ComplianceGate(PACKS, jitter_s=900)
CHANNELS = (Channel.SMS, Channel.VOICE, Channel.EMAIL)
ZONES = (
    "Asia/Shanghai", "America/New_York", "America/Los_Angeles", "Europe/London",
    "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu", "Australia/Lord_Howe",
)  # fmt: skip
REASONS = ("opt_out", "opt_out", "cease", "dispute", "attorney", "bankrupt", "deceased", "paid")
# Instants around the 2027 US DST changes as well as anywhere in the year.
instants = st.one_of(
    st.datetimes(min_value=datetime(2027, 1, 1), max_value=datetime(2027, 12, 31)),
    st.datetimes(min_value=datetime(2027, 3, 13), max_value=datetime(2027, 3, 15)),
    st.datetimes(min_value=datetime(2027, 11, 6), max_value=datetime(2027, 11, 8)),
).map(lambda naive: naive.replace(tzinfo=UTC))


@dataclass
class Book:
    phases: list[tuple[datetime, list[ContactIntent]]]
    suppressions: list[Suppression] = field(default_factory=list)


@st.composite
def books(draw: st.DrawFn) -> Book:
    tag = uuid.uuid4().hex[:8]  # new persons in every example share one ledger safely
    people = []
    for p in range(draw(st.integers(1, 4))):
        jurisdiction = draw(st.sampled_from(["CN", "US", "US-MA", "UK"]))
        people.append((f"person-{tag}-{p}", jurisdiction, draw(st.sampled_from(ZONES))))
    suppressions = []
    for person, _, _ in people:
        for reason, channel, on_debt in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(REASONS),
                    st.one_of(st.none(), st.sampled_from(CHANNELS)),
                    st.booleans(),
                ),
                max_size=2,
            )
        ):
            debt = f"{person}-debt-0" if on_debt else None
            suppressions.append(
                Suppression(
                    person, channel, reason, "operator", datetime(2026, 1, 1, tzinfo=UTC), debt
                )
            )
    phases = []
    for k, at in enumerate(sorted(draw(st.lists(instants, min_size=1, max_size=3)))):
        batch = []
        for n in range(draw(st.integers(1, 8))):
            person, jurisdiction, zone = draw(st.sampled_from(people))
            batch.append(
                make_intent(
                    draw(st.sampled_from(CHANNELS)),
                    account_id=f"acct-{tag}-{k}-{n}",
                    person_id=person,
                    debt_id=f"{person}-debt-{draw(st.integers(0, 1))}",
                    jurisdiction=jurisdiction,
                    timezone=zone,
                    created_at=at - timedelta(hours=1),
                    expires_at=at + timedelta(days=2),
                )
            )
        phases.append((at, batch))
    return Book(phases, suppressions)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path_factory.mktemp('props') / 'ledger.db'}")
    yield opened
    opened.close()


async def _run(book: Book, ledger: Ledger) -> list[tuple[ContactIntent, datetime]]:
    """Publish each phase at its instant and wait until every message has an outcome."""
    server = MemoryBroker()
    server.declare(build_topology())
    clock = ManualClock(book.phases[0][0])
    sends: list[tuple[ContactIntent, datetime]] = []
    counter = OutcomeCounter()

    async def record(intent: ContactIntent, attempt: int) -> SendResult:
        sends.append((intent, clock.now()))
        return SendResult(provider_ref=f"X{len(sends):033d}", status="queued")

    config = Settings(config_dir=CONFIG, shutdown_grace_s=5, max_attempts=2)
    workers = [
        build_worker(
            config,
            WorkerParts(
                channel=channel,
                adapter=CallbackChannel(channel, record),
                ledger=ledger,
                clock=clock,
                gate=GATE.decide,
                broker=server.client(),
                limiter=Unlimited(),
                middleware=(counter,),
            ),
            declare=False,
        )
        for channel in CHANNELS
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    publisher = server.publisher()
    expected = 0
    try:
        for at, batch in book.phases:
            clock.set(at)
            publisher.publish_many(
                OutboundMessage(INTENTS_EXCHANGE, i.channel.value, encode_intent(i), {})
                for i in batch
            )
            expected += len(batch)
            await counter.wait_until(lambda goal=expected: sum(counter.counts.values()) >= goal, 20)
    finally:
        for w in workers:
            w.stop()
        codes = await asyncio.gather(*tasks)
    assert codes == [0] * len(workers)
    assert counter.errors == 0
    return sends


def _suppressed(intent: ContactIntent, suppressions: list[Suppression]) -> list[Suppression]:
    """The suppressions on file that forbid ``intent`` (opt-outs: only their channel)."""
    return [
        s
        for s in suppressions
        if s.person_id == intent.person_id
        and s.debt_id in (None, intent.debt_id)
        and (s.reason != "opt_out" or s.channel in (None, intent.channel))
    ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(book=books())
def test_no_send_outside_the_local_window_or_to_a_suppressed_person(
    ledger: Ledger, book: Book
) -> None:
    for suppression in book.suppressions:
        ledger.add_suppression(suppression)
    sends = asyncio.run(_run(book, ledger))
    event("some sent" if sends else "nothing sent")  # shown by --hypothesis-show-statistics
    for intent, at in sends:
        pack = PACKS.select(intent.jurisdiction, at)
        assert pack is not None
        assert pack.window is not None
        local = at.astimezone(ZoneInfo(intent.timezone)).time().replace(tzinfo=None)
        assert pack.window.start <= local < pack.window.end, (intent.timezone, at, local)
        assert not _suppressed(intent, book.suppressions), intent.intent_id
    ids = [i.intent_id for i, _ in sends]
    assert len(ids) == len(set(ids))  # and nothing twice
