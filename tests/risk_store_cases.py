"""The risk review's ledger tables (bucket_history, promises, decision audit records), as cases
run on SQLite (tests/unit/test_risk_store.py) and PostgreSQL (tests/integration/...)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from alembic import command
from sqlalchemy import inspect

from dunning.ledger import Ledger
from dunning.ledger import engine as engines
from dunning.ledger.risk_store import BucketRow
from tests.factories import T0, make_intent

DAY = date(2026, 11, 28)


class RiskStoreCases:
    def test_buckets_of_a_day_are_replaced_by_a_rerun(self, ledger: Ledger) -> None:
        ledger.record_buckets(DAY, [BucketRow("A", "1-30", "default", "champion")])
        ledger.record_buckets(DAY, [BucketRow("A", "31-60", "high_risk", "challenger")])
        ledger.record_buckets(DAY + timedelta(days=1), [BucketRow("B", "current", "d", "c")])
        assert ledger.buckets_on(DAY) == {"A": BucketRow("A", "31-60", "high_risk", "challenger")}

    def test_promise_made_replaced_and_closed(self, ledger: Ledger) -> None:
        intent = make_intent(account_id="acct-p1")
        ledger.record_published([intent], now=T0)
        first = ledger.add_promise(
            "acct-p1", None, pay_by=DAY + timedelta(days=5), amount=Decimal("99.50"),
            source="cli", now=T0,
        )  # fmt: skip
        assert (first.person_id, first.intent_id) == (intent.person_id, intent.intent_id)
        assert first.amount == Decimal("99.50")
        second = ledger.add_promise(
            "acct-p1", None, pay_by=DAY + timedelta(days=7), amount=None, source="sms", now=T0
        )
        statuses = [(p.id, p.status) for p in ledger.promises_of(["acct-p1"])["acct-p1"]]
        assert statuses == [(first.id, "replaced"), (second.id, "open")]
        # The open promise holds queued intents at send time, up to the end of its day.
        held = [
            (s.reason, s.debt_id, s.until)
            for s in ledger.history(intent.person_id, since=T0).suppressions
            if s.source == "promise"
        ]
        assert held == [("promise_to_pay", "acct-p1", datetime(2026, 12, 6, 12, tzinfo=UTC))]
        assert ledger.close_promise(second.id, "broken", now=T0)
        assert not [
            s for s in ledger.history(intent.person_id, since=T0).suppressions
            if s.source == "promise"
        ]  # fmt: skip
        assert not ledger.close_promise(second.id, "kept", now=T0)  # no longer open
        kinds = [e.kind for e in ledger.timeline(intent.intent_id)]
        assert kinds.count("promise_made") == 2
        assert kinds.count("promise_broken") == 1

    def test_decisions_are_recorded_once_per_intent(self, ledger: Ledger) -> None:
        intent = make_intent()
        detail = {"segment": "default", "reason_codes": ["R01 late"]}
        assert ledger.record_decisions([(intent.intent_id, detail)], now=T0) == 1
        assert ledger.record_decisions([(intent.intent_id, detail)], now=T0) == 0

    def test_the_tables_come_and_go_with_their_migration(
        self, ledger: Ledger, ledger_url: str
    ) -> None:
        engine = engines.make_engine(ledger_url)
        try:
            with engine.begin() as conn:
                command.downgrade(engines.alembic_config(conn), "0008")
            tables = inspect(engine).get_table_names()
            assert "bucket_history" not in tables
            assert "promises" not in tables
            engines.upgrade_head(engine)
            assert {"bucket_history", "promises"} <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
