"""No cap is ever exceeded when worker processes race with batched claims on one PostgreSQL.

The race of ``test_gate_race`` (four OS processes, the real ComplianceGate and
config/compliance.toml, the same random books and the same oracle), but each process claims
its shuffled book in batches of random size through ``Ledger.batched_claims``, the worker's
claim path on PostgreSQL: people locked in sorted order, the gate run per intent in order
against the history read once per batch.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import ContactIntent, decode_intent, encode_intent
from dunning.ledger import Ledger
from dunning.ledger.claim_batch_pg import ClaimRequest
from dunning.ledger.group_commit import SentRecord
from dunning.records import ContactHistory, GateDecision
from tests.integration.test_gate_race import BASE, PACKS_FILE, PROCESSES, _check, books
from tests.services import postgres_schema

pytestmark = pytest.mark.integration

_ledger: Ledger | None = None
_gate: ComplianceGate | None = None


def _start(url: str) -> None:
    """Pool initializer: each process opens its own ledger and gate."""
    global _ledger, _gate  # noqa: PLW0603  one ledger and gate per worker process
    _ledger = Ledger.open(url, migrate=False)
    _gate = ComplianceGate(load_packs(PACKS_FILE), jitter_s=0)


def _claim_all(worker: str, jobs: list[tuple[bytes, str]], seed: int, barrier: Any) -> list[str]:
    """Claim the jobs in batches of 1 to 8; record a send for each claim won."""
    return asyncio.run(_claim_batches(worker, jobs, seed, barrier))


async def _claim_batches(
    worker: str, jobs: list[tuple[bytes, str]], seed: int, barrier: Any
) -> list[str]:
    assert _ledger is not None
    assert _gate is not None
    gate, ledger, rng = _gate, _ledger, random.Random(seed)
    claims = ledger.batched_claims(worker=worker, reconcile_after_s=86400)
    assert claims is not None
    barrier.wait(60)
    kinds: list[str] = []
    try:
        while jobs:
            size = rng.randint(1, 8)
            chunk, jobs = jobs[:size], jobs[size:]
            requests = []
            for body, at in chunk:
                intent, now = decode_intent(body), datetime.fromisoformat(at)

                def decide(
                    history: ContactHistory, intent: ContactIntent = intent, now: datetime = now
                ) -> GateDecision:
                    return gate.decide(intent, history, now)

                requests.append(ClaimRequest(intent, now, decide))
            got = await claims.claim_many(requests)
            sent = []
            for request, batched in zip(requests, got, strict=True):
                claim = batched
                if claim is None:  # a repeated intent in the chunk: the one-at-a-time claim
                    claim = ledger.claim(
                        request.intent, worker=worker, now=request.now,
                        reconcile_after_s=86400, gate=request.gate,
                    )  # fmt: skip
                if claim.kind == "claimed":
                    sent.append(
                        SentRecord(
                            request.intent.intent_id,
                            claim.attempt,
                            f"{worker}-{request.intent.intent_id}",
                            "queued",
                            {},
                            request.now,
                        )
                    )
                kinds.append(claim.kind)
            ledger.record_sent_many(sent)
    finally:
        await claims.aclose()
    return kinds


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    with postgres_schema("dunning_race_batch") as url:
        Ledger.open(url).close()
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


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(book=books(), seed=st.integers(0, 2**32 - 1))
def test_racing_batched_claims_never_exceed_a_cap(
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
        rng.shuffle(order)
        orders.append(order)
    futures = [
        executor.submit(_claim_all, f"w{n}", order, rng.randrange(2**32), barrier)
        for n, order in enumerate(orders)
    ]
    kinds = [kind for future in futures for kind in future.result(timeout=120)]
    sends = _check(ledger, load_packs(PACKS_FILE), book)
    assert kinds.count("claimed") == sends
    sent_ids = [
        a.intent_id
        for person in {i.person_id for i, _ in book}
        for a in ledger.history(person, since=BASE - timedelta(days=1)).attempts
    ]
    assert len(sent_ids) == len(set(sent_ids))
