"""The field-visit cases on PostgreSQL, in a throw-away schema (tests/visit_cases.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from dunning.ledger import Ledger
from tests.services import postgres_schema
from tests.visit_cases import NOW, VisitCases
from tests.visit_rig import VisitRig

pytestmark = pytest.mark.integration

_TABLES = (
    "intents, attempts, receipts, suppressions, audit, collectors, visit_tasks, visit_outcomes, "
    "compliance_incidents"
)


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    with postgres_schema("dunning_visits") as url:
        Ledger.open(url).close()  # migrated once
        yield url


@pytest.fixture
def rig(schema_url: str) -> Iterator[VisitRig]:
    engine = create_engine(schema_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {_TABLES}"))
    engine.dispose()
    opened = VisitRig(schema_url, NOW)
    yield opened
    opened.close()


class TestVisitsOnPostgres(VisitCases):
    pass
