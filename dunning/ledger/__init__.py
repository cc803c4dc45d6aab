"""The ledger: intents, attempts, receipts, suppressions, contact log and audit (SQLAlchemy).

SQLite by default (``sqlite:///var/dunning.db``), PostgreSQL in production
(``postgresql+psycopg://...``); the Alembic migrations ship inside this package.
"""

from dunning.ledger.queries import Claim, TimelineEvent
from dunning.ledger.store import Ledger

__all__ = ["Claim", "Ledger", "TimelineEvent"]
