"""Field visits on a SQLite ledger and the memory broker (cases in tests/visit_cases.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.visit_cases import NOW, VisitCases
from tests.visit_rig import VisitRig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[VisitRig]:
    opened = VisitRig(f"sqlite:///{tmp_path / 'ledger.db'}", NOW)
    yield opened
    opened.close()


class TestVisitsOnSqlite(VisitCases):
    pass
