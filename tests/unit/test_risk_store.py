"""The risk review's ledger tables on SQLite (the cases: tests/risk_store_cases.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dunning.ledger import Ledger
from tests.risk_store_cases import RiskStoreCases


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


class TestRiskStoreSqlite(RiskStoreCases):
    pass
