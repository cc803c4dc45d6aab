"""Group commit of record_sent: ``Ledger.record_sent_many`` and the worker's ``SentWriter``,
on SQLite and on PostgreSQL (a throw-away schema)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from dunning.errors import LedgerError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.records import IntentState
from dunning.workers.ledger_writer import SentRecord, SentWriter
from tests.factories import T0, make_intent
from tests.services import postgres_schema

WINDOW_S = 60.0


@pytest.fixture(scope="module")
def pg_schema_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        opened = Ledger.open(request.getfixturevalue("pg_schema_url"))
        with opened._engine.begin() as conn:
            conn.execute(text("TRUNCATE intents, attempts, receipts, suppressions, audit"))
    yield opened
    opened.close()


def _claimed(ledger: Ledger, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        intent = make_intent()
        claim = ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        assert claim.kind == "claimed"
        ids.append(intent.intent_id)
    return ids


def _record(intent_id: str, ref: str) -> SentRecord:
    return SentRecord(intent_id, 1, ref, "queued", {"segments": 2}, T0 + timedelta(seconds=1))


def test_record_sent_many_writes_each_send_as_record_sent_does(ledger: Ledger) -> None:
    ids = _claimed(ledger, 3)
    # The second one's delivery callback beat the HTTP response: kept unmatched until now.
    assert not ledger.record_receipt("SM-b", "delivered", channel=Channel.SMS, rank=5, now=T0)
    ledger.record_sent_many([_record(i, f"SM-{n}") for i, n in zip(ids, "abc", strict=True)])
    states = [ledger.get_state(i) for i in ids]
    assert states == [IntentState.SENT, IntentState.DELIVERED, IntentState.SENT]
    for intent_id, ref in zip(ids, ("SM-a", "SM-b", "SM-c"), strict=True):
        attempt = next(e for e in ledger.timeline(intent_id) if e.kind == "attempt")
        assert attempt.detail["provider_ref"] == ref
        assert attempt.detail["segments"] == 2
    assert ledger.counts_by_state() == {("sms", "sent"): 2, ("sms", "delivered"): 1}


def test_record_sent_many_never_steps_back_or_revives_a_released_attempt(ledger: Ledger) -> None:
    delivered, released = _claimed(ledger, 2)
    ledger.record_sent_many([_record(delivered, "SM-d")])
    assert ledger.record_receipt("SM-d", "delivered", channel=Channel.SMS, rank=5, now=T0)
    ledger.release(released, 1, reason="throttled", now=T0)
    ledger.record_sent_many([_record(delivered, "SM-d"), _record(released, "SM-r")])
    assert ledger.get_state(delivered) is IntentState.DELIVERED
    attempt = next(e for e in ledger.timeline(released) if e.kind == "attempt")
    assert attempt.detail.get("provider_ref") != "SM-r"


async def test_writer_coalesces_concurrent_sends_and_returns_after_commit(ledger: Ledger) -> None:
    ids = _claimed(ledger, 40)
    writer = SentWriter(ledger)

    async def send(intent_id: str, n: int) -> IntentState | None:
        await writer.record_sent(_record(intent_id, f"SM-{n}"))
        return ledger.get_state(intent_id)  # committed by the time the await returns

    states = await asyncio.gather(*(send(i, n) for n, i in enumerate(ids)))
    await writer.aclose()
    assert states == [IntentState.SENT] * len(ids)
    assert 1 <= writer.batches < len(ids)


class _FailingOnce:
    """A ledger whose first batch fails, as a dropped database connection would."""

    def __init__(self) -> None:
        self.written: list[list[str]] = []

    def record_sent_many(self, records: Sequence[SentRecord]) -> None:
        if not self.written:
            self.written.append([])
            raise LedgerError("ledger transaction failed: connection lost")
        self.written.append([r.intent_id for r in records])


async def test_a_failed_batch_fails_each_of_its_sends_and_the_writer_goes_on() -> None:
    ledger = _FailingOnce()
    writer = SentWriter(ledger)
    with pytest.raises(LedgerError):
        await writer.record_sent(_record("i-1", "SM-1"))
    await writer.record_sent(_record("i-2", "SM-2"))
    await writer.aclose()
    assert ledger.written == [[], ["i-2"]]
    assert writer.batches == 1
