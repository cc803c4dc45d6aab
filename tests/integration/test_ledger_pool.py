"""The bounded ledger pool on the machine's PostgreSQL: a burst opens up to the bound, never
more, and ``release_idle`` lets the idle connections go without breaking the pool's count."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, text

from dunning.ledger import Ledger
from dunning.ledger.engine import PoolBounds
from tests.services import POSTGRES_URL, postgres_schema


def _connections(app_name: str) -> int:
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.connect() as conn:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a")
            return int(conn.execute(query, {"a": app_name}).scalar_one())
    finally:
        admin.dispose()


def _settled(app_name: str, expected: int, timeout_s: float = 10.0) -> int:
    """The connection count once it reaches ``expected`` (a closed backend leaves
    pg_stat_activity a moment after the client let go), or the last count seen."""
    deadline = time.monotonic() + timeout_s
    while (seen := _connections(app_name)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval of the condition
    return seen


def _burst(ledger: Ledger, width: int, app_name: str) -> int:
    """``width`` transactions open at once; returns the connections PostgreSQL saw meanwhile."""
    together = threading.Barrier(width + 1, timeout=30)

    def hold() -> None:
        with ledger._engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            together.wait()  # every transaction holds its connection...
            together.wait()  # ...until the count was taken

    with ThreadPoolExecutor(max_workers=width) as pool:
        held = [pool.submit(hold) for _ in range(width)]
        together.wait()
        seen = _connections(app_name)
        together.wait()
        for future in held:
            future.result()
    return seen


def test_a_burst_opens_up_to_the_bound_and_the_idle_connections_are_released() -> None:
    with postgres_schema() as url:
        app_name = f"dunning-pool-{uuid.uuid4().hex[:10]}"
        ledger = Ledger.open(url, pool=PoolBounds(max_connections=6), application_name=app_name)
        try:
            assert _burst(ledger, 6, app_name) == 6
            assert _connections(app_name) == 6  # a plain pool keeps all of them open

            assert ledger.release_idle(2) == 4
            assert _settled(app_name, 2) == 2

            assert _burst(ledger, 6, app_name) == 6  # the released slots open again
            assert ledger.release_idle(2) == 4
            assert ledger.release_idle(2) == 0
            assert _settled(app_name, 2) == 2
        finally:
            ledger.close()
        assert _settled(app_name, 0) == 0
