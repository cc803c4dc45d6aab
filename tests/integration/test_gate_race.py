"""No cap is ever exceeded when several worker processes race on one PostgreSQL ledger.

Four OS processes (spawned once for the module) claim the same random book of intents, each
in its own random order and at the intent's own instant, through ``Ledger.claim`` with the real
ComplianceGate and config/compliance.toml, and record a send for every claim they win. After
each example the attempts in the ledger are checked against an oracle written independently
of the gate: within any span of a rolling cap, and within any local calendar day of a daily
cap, no person, debt or number has more attempts than the pack allows, and every attempt fell
inside the contact window in the person's local time.
"""

from __future__ import annotations

import multiprocessing
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dunning.compliance import ComplianceGate, load_packs
from dunning.compliance.packs import CapRule, PackSet
from dunning.intents import Channel, ContactIntent, decode_intent, encode_intent
from dunning.ledger import Ledger
from dunning.records import ContactAttempt, ContactHistory, GateDecision
from tests.factories import make_intent
from tests.services import postgres_schema

pytestmark = pytest.mark.integration

PACKS_FILE = Path(__file__).resolve().parents[2] / "config" / "compliance.toml"
PROCESSES = 4
BASE = datetime(2026, 12, 1, tzinfo=UTC)
SPAN_MIN = 3 * 24 * 60  # instants fall over three days, so daily and weekly caps both bind
ZONES = {"CN": ["Asia/Shanghai"], "US": ["America/New_York", "Pacific/Pago_Pago"]}
ZONES["US-MA"] = ["America/New_York"]

# --- the worker processes ----------------------------------------------------------------------

_ledger: Ledger | None = None
_gate: ComplianceGate | None = None


def _start(url: str) -> None:
    """Pool initializer: each process opens its own ledger connection pool and gate."""
    global _ledger, _gate  # noqa: PLW0603  one ledger and gate per worker process
    _ledger = Ledger.open(url, migrate=False)
    _gate = ComplianceGate(load_packs(PACKS_FILE), jitter_s=0)


def _claim_all(worker: str, jobs: list[tuple[bytes, str]], barrier: Any) -> list[str]:
    """Claim each (intent, instant) in order; send what is claimed; returns the claim kinds."""
    assert _ledger is not None
    assert _gate is not None
    gate = _gate
    barrier.wait(60)  # every process starts together so that they race
    kinds = []
    for body, at in jobs:
        intent, now = decode_intent(body), datetime.fromisoformat(at)

        def decide(
            history: ContactHistory, intent: ContactIntent = intent, now: datetime = now
        ) -> GateDecision:
            return gate.decide(intent, history, now)

        claim = _ledger.claim(intent, worker=worker, now=now, reconcile_after_s=86400, gate=decide)
        if claim.kind == "claimed":
            _ledger.record_sent(
                intent.intent_id, claim.attempt, provider_ref=f"{worker}-{intent.intent_id}",
                status="queued", detail={}, now=now,
            )  # fmt: skip
        kinds.append(claim.kind)
    return kinds


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    with postgres_schema("dunning_race") as url:
        Ledger.open(url).close()  # migrate once, before the processes connect
        yield url


@pytest.fixture(scope="module")
def pool(schema_url: str) -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    context = multiprocessing.get_context("spawn")
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(
            PROCESSES, mp_context=context, initializer=_start, initargs=(schema_url,)
        ) as executor,
    ):
        yield executor, manager


@pytest.fixture(scope="module")
def ledger(schema_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(schema_url, migrate=False)
    yield opened
    opened.close()


# --- the book ----------------------------------------------------------------------------------


@st.composite
def books(draw: st.DrawFn) -> list[tuple[ContactIntent, datetime]]:
    """A few persons with one or two debts each, and many intents at random instants."""
    tag = uuid.uuid4().hex[:8]  # persons are new in every example: no truncation needed
    book: list[tuple[ContactIntent, datetime]] = []
    for p in range(draw(st.integers(2, 3))):
        jurisdiction = draw(st.sampled_from(sorted(ZONES)))
        zone = draw(st.sampled_from(ZONES[jurisdiction]))
        debts = [f"debt-{tag}-{p}-{d}" for d in range(draw(st.integers(1, 2)))]
        plan = st.tuples(
            st.sampled_from([Channel.SMS, Channel.VOICE, Channel.EMAIL]),
            st.sampled_from(debts),
            st.integers(0, SPAN_MIN),
        )
        for n, (channel, debt, minute) in enumerate(draw(st.lists(plan, min_size=15, max_size=30))):
            at = BASE + timedelta(minutes=minute)
            intent = make_intent(
                channel, account_id=f"acct-{tag}-{p}-{n}", person_id=f"person-{tag}-{p}",
                debt_id=debt, jurisdiction=jurisdiction, timezone=zone,
                created_at=BASE - timedelta(hours=1), expires_at=BASE + timedelta(days=5),
            )  # fmt: skip
            book.append((intent, at))
    return book


# --- the oracle --------------------------------------------------------------------------------


def _key(rule: CapRule, attempt: ContactAttempt) -> str:
    return {"debt": attempt.debt_id, "phone": attempt.phone or "?"}.get(rule.key, "person")


def _cap_breaches(rule: CapRule, attempts: list[ContactAttempt], zone: ZoneInfo) -> list[str]:
    """Groups of attempts that ``rule`` (a count cap) forbids, by its plain reading."""
    counted = sorted((a for a in attempts if a.channel in rule.channels), key=lambda a: a.at)
    breaches = []
    for a in counted:
        same = [b for b in counted if _key(rule, b) == _key(rule, a)]
        if rule.window == "calendar_day":
            group = [
                b for b in same if b.at.astimezone(zone).date() == a.at.astimezone(zone).date()
            ]
        else:
            group = [b for b in same if a.at <= b.at < a.at + timedelta(days=rule.days)]
        if len(group) > rule.limit:
            breaches.append(f"{rule.id}: {len(group)} > {rule.limit} from {a.at.isoformat()}")
    return breaches


def _check(ledger: Ledger, packs: PackSet, book: list[tuple[ContactIntent, datetime]]) -> int:
    persons = {i.person_id: i for i, _ in book}
    sends = 0
    for person, intent in persons.items():
        attempts = list(ledger.history(person, since=BASE - timedelta(days=1)).attempts)
        sends += len(attempts)
        zone = ZoneInfo(intent.timezone)
        pack = packs.select(intent.jurisdiction, BASE)
        assert pack is not None
        assert pack.window is not None
        for a in attempts:
            local = a.at.astimezone(zone).time()
            assert pack.window.start <= local < pack.window.end, (a, intent.timezone)
        breaches = [
            breach
            for rule in pack.caps
            if rule.kind == "count"
            for breach in _cap_breaches(rule, attempts, zone)
        ]
        assert not breaches, (intent.jurisdiction, breaches)
    return sends


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(book=books(), seed=st.integers(0, 2**32 - 1))
def test_racing_processes_never_exceed_a_cap(
    pool: tuple[ProcessPoolExecutor, Any],
    ledger: Ledger,
    book: list[tuple[ContactIntent, datetime]],
    seed: int,
) -> None:
    executor, manager = pool
    barrier = manager.Barrier(PROCESSES)
    rng = random.Random(seed)
    jobs = [(encode_intent(i), at.isoformat()) for i, at in book]
    orders = []
    for _ in range(PROCESSES):
        order = list(jobs)
        rng.shuffle(order)  # each process meets the book in its own order
        orders.append(order)
    futures = [
        executor.submit(_claim_all, f"w{n}", order, barrier) for n, order in enumerate(orders)
    ]
    kinds = [kind for future in futures for kind in future.result(timeout=120)]
    sends = _check(ledger, load_packs(PACKS_FILE), book)
    # Every intent was sent at most once, however many processes claimed it.
    assert kinds.count("claimed") == sends
    ids = [i.intent_id for i, _ in book]
    sent_ids = [
        a.intent_id
        for person in {i.person_id for i, _ in book}
        for a in ledger.history(person, since=BASE - timedelta(days=1)).attempts
    ]
    assert len(sent_ids) == len(set(sent_ids))
    assert set(sent_ids) <= set(ids)
