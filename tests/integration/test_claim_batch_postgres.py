"""Claims of many intents in one PostgreSQL transaction decide as one-at-a-time claims would.

Each case claims the same book twice, in two fresh schemas: once through ``Ledger.claim`` one
intent at a time, once through ``Ledger.batched_claims`` in one batch, and compares the
decisions and what the ledger holds afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.claim_batch_pg import ClaimRequest
from dunning.ledger.group_commit import SentRecord
from dunning.records import ContactHistory, GateDecision, IntentState
from dunning.workers.ledger_writer import SentWriter
from tests.factories import make_intent
from tests.services import postgres_schema

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def two_ledgers() -> Iterator[tuple[Ledger, Ledger]]:
    with postgres_schema("dunning_one") as one, postgres_schema("dunning_batch") as batch:
        first, second = Ledger.open(one), Ledger.open(batch)
        yield first, second
        first.close()
        second.close()


def _cap(limit: int) -> Callable[[ContactHistory], GateDecision]:
    """A gate that allows ``limit`` contacts per person and suppresses beyond (counts history)."""

    def gate(history: ContactHistory) -> GateDecision:
        if len(history.attempts) >= limit:
            return GateDecision("suppress", "cap", f"{len(history.attempts)} contacts")
        return GateDecision("allow", "ok", "under the cap")

    return gate


def _rows(ledger: Ledger, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(ledger._engine.url)  # the test's own view of the schema
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


_ATTEMPTS = "SELECT intent_id, attempt_no, outcome, person_id FROM attempts ORDER BY id"
_INTENTS = "SELECT intent_id, state, attempts, last_error FROM intents ORDER BY intent_id"
_AUDIT = "SELECT intent_id, event, rule_id FROM audit ORDER BY id"


def _book() -> list[ContactIntent]:
    """Three people: one with five intents (the cap binds inside the batch), two with one."""
    many = [
        make_intent(Channel.SMS, account_id=f"acct-a{n}", person_id="person-a") for n in range(5)
    ]
    return [*many[:2], make_intent(Channel.SMS, person_id="person-b"), *many[2:],
            make_intent(Channel.VOICE, person_id="person-c")]  # fmt: skip


async def test_a_batch_decides_and_writes_as_one_claim_at_a_time(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    one, batched = two_ledgers
    book = _book()
    gate = _cap(2)
    expected = [one.claim(i, worker="w", now=NOW, reconcile_after_s=60, gate=gate) for i in book]
    claims = batched.batched_claims(worker="w", reconcile_after_s=60)
    assert claims is not None
    try:
        got = await claims.claim_many([ClaimRequest(i, NOW, gate) for i in book])
    finally:
        await claims.aclose()
    assert [(c.kind, c.state, c.attempt) for c in expected] == [
        (c.kind, c.state, c.attempt) for c in got if c is not None
    ]
    assert [c.kind for c in expected].count("claimed") == 4  # 2 of person-a, b, c
    for sql in (_ATTEMPTS, _INTENTS):
        assert _rows(one, sql) == _rows(batched, sql)
    # The same audit records; a batch writes its gate verdicts after its claims.
    assert sorted(_rows(one, _AUDIT)) == sorted(_rows(batched, _AUDIT))


async def test_settled_in_flight_stale_and_repeated_intents(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    _, ledger = two_ledgers
    sent, in_flight, stale = (make_intent(Channel.SMS) for _ in range(3))
    for intent, at in ((sent, NOW), (in_flight, NOW), (stale, NOW - timedelta(minutes=5))):
        claim = ledger.claim(intent, worker="w", now=at, reconcile_after_s=60)
        assert claim.kind == "claimed"
    ledger.record_sent(sent.intent_id, 1, provider_ref="SM1", status="queued", detail={}, now=NOW)
    fresh = make_intent(Channel.SMS)
    claims = ledger.batched_claims(worker="w", reconcile_after_s=60)
    assert claims is not None
    try:
        got = await claims.claim_many(
            [ClaimRequest(i, NOW, None) for i in (sent, in_flight, stale, fresh, fresh)]
        )
    finally:
        await claims.aclose()
    kinds = [None if c is None else (c.kind, c.state) for c in got]
    assert kinds == [
        ("done", IntentState.SENT),
        ("in_doubt", IntentState.SENDING),
        None,  # past the reconcile window: receipts or a reclaim, one at a time
        ("claimed", IntentState.SENDING),
        None,  # a second copy: claimed alone after the batch, it then finds the first
    ]
    again = ledger.claim(fresh, worker="w", now=NOW, reconcile_after_s=60)
    assert again.kind == "in_doubt"


async def test_a_failed_batch_writes_nothing(two_ledgers: tuple[Ledger, Ledger]) -> None:
    _, ledger = two_ledgers
    book = _book()

    def broken(_history: ContactHistory) -> GateDecision:
        raise RuntimeError("gate failed")

    claims = ledger.batched_claims(worker="w", reconcile_after_s=60)
    assert claims is not None
    try:
        with pytest.raises(RuntimeError, match="gate failed"):
            await claims.claim_many([ClaimRequest(i, NOW, broken) for i in book])
        assert _rows(ledger, _INTENTS) == []
        # The connection is usable afterwards.
        got = await claims.claim_many([ClaimRequest(book[0], NOW, None)])
        assert got[0] is not None
        assert got[0].kind == "claimed"
    finally:
        await claims.aclose()


async def test_sends_on_the_event_loop_and_early_receipts_through_the_ledger(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    _, ledger = two_ledgers
    plain, early = make_intent(Channel.SMS), make_intent(Channel.SMS)
    for intent in (plain, early):
        ledger.claim(intent, worker="w", now=NOW, reconcile_after_s=60)
    # The callback of the second send raced its HTTP response: stored before the send.
    ledger.record_receipt("SM-early", "delivered", channel=Channel.SMS, rank=5, now=NOW)
    records = [SentRecord(i.intent_id, 1, f"SM-{n}", "queued", {}, NOW)
               for n, i in (("plain", plain), ("early", early))]  # fmt: skip
    sends = ledger.batched_sends()
    assert sends is not None
    try:
        assert await sends.record_many(records) is False  # rolled back: nothing written
        assert ledger.timeline(plain.intent_id)[0].detail["outcome"] == "sending"
        assert await sends.record_many(records[:1]) is True
    finally:
        await sends.aclose()
    writer = SentWriter(ledger)
    try:
        await writer.record_sent(records[1])
    finally:
        await writer.aclose()
    assert _rows(ledger, "SELECT intent_id, state FROM intents ORDER BY state DESC") == [
        (plain.intent_id, "sent"),
        (early.intent_id, "delivered"),
    ]
