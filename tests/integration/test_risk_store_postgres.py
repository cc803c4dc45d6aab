"""The risk review's ledger tables on PostgreSQL, in a throw-away schema per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dunning.ledger import Ledger
from tests.risk_store_cases import RiskStoreCases
from tests.services import postgres_schema

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


class TestRiskStorePostgres(RiskStoreCases):
    pass
