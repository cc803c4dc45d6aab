"""The webhook and the receipt store on PostgreSQL, under concurrent copies of callbacks.

Twilio retries, and several webhook processes may each receive a copy at once: every provider
event must be stored once and an intent must end at its highest-ranked status, whatever order
the transactions commit in. A batch of vendor events is stored whole or refused whole.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
import pytest_asyncio
from alembic import command
from sqlalchemy import insert, select

from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger import engine as engines
from dunning.ledger.schema import receipts
from dunning.receipts import statuses
from dunning.records import IntentState
from dunning.sandbox.twilio_api import TwilioStandIn
from tests.factories import T0, make_intent
from tests.integration.twilio_support import standin
from tests.integration.webhook_support import Hook, claim, start_hook
from tests.services import postgres_schema

__all__ = ["standin"]  # fixture, imported for pytest

pytestmark = pytest.mark.integration

TRIALS = 6
COPIES = 10


@pytest.fixture
def schema_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest_asyncio.fixture
async def pg_hook(standin: TwilioStandIn, schema_url: str) -> AsyncIterator[Hook]:
    async with start_hook(standin, schema_url) as running:
        yield running


def _rows(hook: Hook, provider_ref: str) -> list[str]:
    with hook.ledger._engine.connect() as conn:
        return sorted(
            conn.scalars(select(receipts.c.status).where(receipts.c.provider_ref == provider_ref))
        )


async def test_concurrent_copies_of_sent_and_delivered_store_one_row_each_and_end_delivered(
    pg_hook: Hook,
) -> None:
    for trial in range(TRIALS):
        intent = make_intent()
        claim(pg_hook.ledger, intent)
        sid = f"SM{trial:032d}"
        path = f"/twilio/status?intent_id={intent.intent_id}"
        copies = [
            pg_hook.post_signed(path, {"MessageSid": sid, "MessageStatus": status})
            for _ in range(COPIES)
            for status in ("sent", "delivered")
        ]
        answers = await asyncio.gather(*copies)
        assert [a.status_code for a in answers] == [200] * len(copies)
        assert _rows(pg_hook, sid) == ["delivered", "sent"], f"trial {trial}"
        assert pg_hook.ledger.get_state(intent.intent_id) is IntentState.DELIVERED, trial


def _store_at_once(ledger: Ledger, intent_id: str, ref: str, wanted: list[str]) -> None:
    """Store one receipt per status in ``wanted``, each from its own thread, released together."""
    start = threading.Barrier(len(wanted))

    def deliver(status: str) -> None:
        start.wait()
        ledger.store_receipt(
            provider_ref=ref,
            channel=Channel.SMS,
            status=status,
            rank=statuses.rank(Channel.SMS, status),
            now=T0 + timedelta(seconds=1),
            intent_id=intent_id,
        )

    threads = [threading.Thread(target=deliver, args=(status,)) for status in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


def test_threads_storing_sent_and_delivered_at_once_leave_the_highest_rank(
    schema_url: str,
) -> None:
    ledger = Ledger.open(schema_url)
    try:
        for trial in range(TRIALS):
            intent = make_intent()
            ledger.record_published([intent], now=T0)
            ledger.claim(intent, worker="w", now=T0, reconcile_after_s=900)
            ref = f"SMthread{trial}"
            _store_at_once(ledger, intent.intent_id, ref, ["sent", "delivered"] * 2)
            with ledger._engine.connect() as conn:
                stored = sorted(
                    conn.scalars(select(receipts.c.status).where(receipts.c.provider_ref == ref))
                )
            assert stored == ["delivered", "sent"], f"trial {trial}"
            assert ledger.get_state(intent.intent_id) is IntentState.DELIVERED, trial
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"event": "x" * 40}, "events[1].event"),
        ({"file": "ref\x00.pdf"}, "events[1].file"),
        ({"file": "r" * 200}, "events[1].file"),
        ({"intent_id": "i" * 65}, "events[1].intent_id"),
    ],
)
async def test_a_batch_with_one_unstorable_event_is_refused_whole(
    pg_hook: Hook, bad: dict[str, str], field: str
) -> None:
    intent = make_intent(Channel.LETTER)
    attempt = claim(pg_hook.ledger, intent)
    ref = f"{intent.intent_id}.pdf"
    pg_hook.ledger.record_sent(intent.intent_id, attempt, provider_ref=ref, status="dispatched",
                               detail={}, now=T0)  # fmt: skip
    good = {"file": ref, "intent_id": intent.intent_id, "event": "printed"}
    batch = {"events": [good, {**good, "event": "mailed", **bad}]}
    for _ in range(2):  # the provider's retry gets the same answer: nothing was half-stored
        refused = await pg_hook.post_json("/letters/events", batch)
        assert refused.status_code == 400
        assert refused.json()["error"].startswith(field)
        assert _rows(pg_hook, ref) == []
    fixed = await pg_hook.post_json(
        "/letters/events", {"events": [good, {**good, "event": "mailed"}]}
    )
    assert fixed.json() == {"received": 2, "outcomes": ["applied", "applied"]}
    assert pg_hook.ledger.get_state(intent.intent_id) is IntentState.DELIVERED


def test_the_migration_folds_receipts_stored_twice_before_the_unique_key(
    schema_url: str,
) -> None:
    engine = engines.make_engine(schema_url)
    try:
        with engine.begin() as conn:
            command.upgrade(engines.alembic_config(conn), "0003")
        row = {"channel": "sms", "status": "delivered", "rank": 100, "received_at": T0}
        with engine.begin() as conn:
            conn.execute(
                insert(receipts),
                [
                    {**row, "provider_ref": "SMdup", "applied": False},
                    {**row, "provider_ref": "SMdup", "applied": True},
                    {**row, "provider_ref": "SMdup", "applied": False},
                    {**row, "provider_ref": "SMonce", "applied": False},
                ],
            )
        engines.upgrade_head(engine)
        with engine.connect() as conn:
            kept = conn.execute(
                select(receipts.c.provider_ref, receipts.c.applied).order_by(receipts.c.id)
            ).all()
        assert [tuple(r) for r in kept] == [("SMdup", True), ("SMonce", False)]
        assert engines.current_revision(engine) == engines.head_revision()
    finally:
        engine.dispose()
