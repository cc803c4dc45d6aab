"""The engine and the transaction every part of :class:`dunning.ledger.Ledger` runs in.

:class:`Ledger` is put together from one class per concern (the claim and outcomes, people's
suppressions and histories, receipts and inbound messages, repairs, read-side reports), all
on this base: the engine stays inside the ledger package, and every database fault leaves it
as :class:`~dunning.errors.LedgerError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from dunning.errors import LedgerError
from dunning.ledger import engine as engines
from dunning.ledger.locks import lock_people

__all__ = ["LedgerCore"]


class LedgerCore:
    """One SQL database; subclasses add the ledger's operations on it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{engines.READ_ONLY: True})

    def upgrade(self) -> None:
        engines.upgrade_head(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def ping(self) -> None:
        """Run ``SELECT 1`` (a readiness check); raises LedgerError naming the fault's class."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise LedgerError(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc

    def release_idle(self, keep: int) -> int:
        """Close pooled connections left idle beyond ``keep``; returns how many were closed."""
        return engines.release_idle(self._engine, keep)

    @contextmanager
    def _tx(
        self, person_id: str | None = None, *, read: bool = False, what: str = "ledger transaction"
    ) -> Iterator[Connection]:
        """One transaction; ``person_id`` serialises it with every other one for that person.

        A database fault comes out as LedgerError("<what> failed: ...").
        """
        engine = self._reader if read else self._engine
        try:
            with engine.begin() as conn:
                if person_id is not None:
                    lock_people(conn, [person_id])
                yield conn
        except SQLAlchemyError as exc:
            raise LedgerError(f"{what} failed: {exc}") from exc
