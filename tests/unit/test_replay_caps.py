"""Replay after a failure before the provider, on SQLite (see tests/replay_cases.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dunning.ledger import Ledger
from tests.replay_cases import ReplayCapCases


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


class TestReplayCapsOnSQLite(ReplayCapCases):
    pass
