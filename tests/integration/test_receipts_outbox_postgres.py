"""The receipts feed's outbox cases on PostgreSQL, and drainers of several webhook processes
taking disjoint batches (``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import create_engine, text

from dunning.clock import ManualClock
from dunning.errors import LedgerError
from dunning.ledger import Ledger
from dunning.ledger.receipts_outbox import PendingMessage, publish_pending, unpublished_count
from tests.factories import T0
from tests.receipts_outbox_cases import JOIN_S, Collect, ReceiptsOutboxCases, store
from tests.services import postgres_schema

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    with postgres_schema("dunning_outbox") as url:
        yield url


@pytest.fixture
def ledger_url(schema_url: str) -> str:
    """The schema, migrated, with no receipts."""
    Ledger.open(schema_url).close()
    engine = create_engine(schema_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE receipts, receipt_feed"))
    engine.dispose()
    return schema_url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


class TestReceiptsOutboxOnPostgres(ReceiptsOutboxCases):
    def test_two_drainers_never_take_the_same_rows(self, ledger: Ledger, ledger_url: str) -> None:
        store(ledger, *(f"SM{i}" for i in range(1, 7)))
        # The other webhook process: an engine, and so connections, of its own.
        other = Ledger.open(ledger_url, migrate=False)
        clock = ManualClock(T0)
        holding, release = threading.Event(), threading.Event()
        first: list[str] = []

        def hold(batch: Sequence[PendingMessage]) -> None:
            first.extend(entry.message.message_id for entry in batch)
            holding.set()
            release.wait(JOIN_S)  # still publishing while the other drainer runs

        drainer = threading.Thread(
            target=publish_pending, args=(ledger._engine, hold), kwargs={"clock": clock, "limit": 3}
        )
        second = Collect()
        rival = threading.Thread(
            target=publish_pending,
            args=(other._engine, second),
            kwargs={"clock": clock, "limit": 3},
        )
        drainer.start()
        try:
            assert holding.wait(JOIN_S)
            rival.start()
            rival.join(JOIN_S)
            rival_done_meanwhile = not rival.is_alive()  # it skipped the locked rows
        finally:
            release.set()
            drainer.join(JOIN_S)
            rival.join(JOIN_S)
            other.close()
        assert rival_done_meanwhile
        assert first == ["SM1:delivered", "SM2:delivered", "SM3:delivered"]
        assert second.batches == [["SM4:delivered", "SM5:delivered", "SM6:delivered"]]
        assert unpublished_count(ledger._engine) == 0

    def test_a_drainer_killed_after_publishing_leaves_its_batch_to_the_next(
        self, ledger: Ledger, ledger_url: str
    ) -> None:
        """Its connection goes with the process: the locks are released, the batch was never
        marked, and the next drainer publishes it again (at least once)."""
        store(ledger, "SM1", "SM2")
        name = f"dunning-doomed-{uuid.uuid4().hex[:8]}"
        doomed = Ledger.open(f"{ledger_url}&application_name={name}", migrate=False)
        clock = ManualClock(T0)
        published = Collect()

        def publish_then_die(batch: Sequence[PendingMessage]) -> None:
            published(batch)
            with ledger._engine.begin() as conn:  # as the server sees a kill -9 of the client
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": name},
                )

        try:
            with pytest.raises(LedgerError):
                publish_pending(doomed._engine, publish_then_die, clock=clock, limit=10)
        finally:
            doomed.close()
        survivor = Collect()
        assert publish_pending(ledger._engine, survivor, clock=clock, limit=10) == 2
        assert published.batches == survivor.batches == [["SM1:delivered", "SM2:delivered"]]
