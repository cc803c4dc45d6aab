"""The receipts feed's outbox cases on SQLite (a file per test: WAL and BEGIN IMMEDIATE)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dunning.ledger import Ledger
from tests.receipts_outbox_cases import ReceiptsOutboxCases


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/ledger.db"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


class TestReceiptsOutboxOnSQLite(ReceiptsOutboxCases):
    pass
