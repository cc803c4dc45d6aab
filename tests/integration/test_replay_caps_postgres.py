"""Replay after a failure before the provider, on PostgreSQL (see tests/replay_cases.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dunning.ledger import Ledger
from tests.replay_cases import ReplayCapCases
from tests.services import postgres_schema

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with postgres_schema() as url:
        opened = Ledger.open(url)
        yield opened
        opened.close()


class TestReplayCapsOnPostgres(ReplayCapCases):
    pass
