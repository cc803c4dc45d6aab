"""Alembic environment of the ledger.

``dunning db upgrade`` hands in an open connection through ``config.attributes``; the
``alembic`` command line instead gives a URL (``-x url=...`` or ``sqlalchemy.url``) and this
module builds the engine the same way the ledger does (SQLite pragmas included).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from dunning.ledger.engine import make_engine
from dunning.ledger.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run against a database")
_main()
