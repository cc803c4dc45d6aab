"""Engines for the ledger, and the Alembic runner that ships inside the package.

SQLite needs help to serialise writers: pysqlite's own transaction handling is switched off
(``isolation_level = None``) and every transaction opens with ``BEGIN IMMEDIATE``, so two
claims for the same person never interleave. WAL lets readers run beside the one writer, and a
busy timeout makes a waiting writer queue instead of failing at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.util import queue as sqla_queue

from dunning.errors import ConfigError, LedgerError
from dunning.urls import mask_url

__all__ = [
    "MIGRATIONS_DIR",
    "READ_ONLY",
    "PoolBounds",
    "alembic_config",
    "current_revision",
    "head_revision",
    "known_revision",
    "make_engine",
    "release_idle",
    "upgrade_head",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option marking a transaction that only reads (SQLite then begins it deferred).
READ_ONLY = "dunning_read_only"
#: Advisory lock key held while migrating PostgreSQL, so workers starting together queue up.
_MIGRATION_LOCK_KEY = 0x64756E6E696E67  # "dunning"
#: Seconds a PostgreSQL connection attempt may take (unless the URL sets ``connect_timeout``):
#: without it an unreachable host holds a ledger thread for the OS's TCP timeout (minutes).
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class PoolBounds:
    """How many PostgreSQL connections one process may hold.

    ``max_connections`` bounds checked-out plus idle connections at any instant (a ledger
    thread never waits for one when it is the thread count); :func:`release_idle` closes the
    idle ones beyond ``keep_idle``, so a burst (the catch-up after an outage) does not leave
    the pool at its peak for the life of the process.
    """

    max_connections: int
    keep_idle: int = 2


class _TrimmablePool(QueuePool):
    """A QueuePool whose idle connections beyond a number can be closed on demand.

    It removes them exactly as QueuePool itself drops a returned connection that finds the
    pool full (close the record, then give its overflow slot back), so the pool's accounting
    stays right and a later burst may open them again.
    """

    def release_idle(self, keep: int) -> int:
        closed = 0
        while self.checkedin() > keep:
            try:
                record = self._pool.get(False)
            except sqla_queue.Empty:
                break
            try:
                record.close()
            finally:
                self._dec_overflow()
            closed += 1
        return closed


def release_idle(engine: Engine, keep: int) -> int:
    """Close ``engine``'s idle pooled connections beyond ``keep``; returns how many closed."""
    pool = engine.pool
    return pool.release_idle(keep) if isinstance(pool, _TrimmablePool) else 0


def make_engine(
    url: str, *, pool: PoolBounds | None = None, application_name: str = "dunning"
) -> Engine:
    """Create the engine for ``url`` (SQLite file parents are created); raises ConfigError.

    On PostgreSQL, ``pool`` bounds the connections (workers size it from their in-flight
    limit, see docs/operations.md); without it the pool keeps up to 20 idle plus 10 more.
    ``application_name`` (unless the URL sets one) names the connections in
    ``pg_stat_activity``.
    """
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # an unknown driver fails here, not as a traceback further on
    except NoSuchModuleError:
        raise ConfigError(
            f"database URL {mask_url(url)!r}: unknown database driver {url.split(':', 1)[0]!r}"
        ) from None
    except SQLAlchemyError as exc:
        raise ConfigError(f"database URL {mask_url(url)!r} is not valid: {exc}") from exc
    except ValueError:
        # The message quotes the port text, which is the password when it holds a '/' or '@'.
        raise ConfigError(
            f"database URL {mask_url(url)!r} is not valid: the port is not a number"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if "application_name" not in parsed.query:
            connect_args["application_name"] = application_name
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        # hide_parameters: rows hold names, phone numbers and bodies; errors must not carry them.
        # No pre-ping: it was one of about eleven round trips per send on the hot path; after a
        # database restart the first transaction on a stale connection fails (LedgerError: the
        # worker retries it once its probe passes) and SQLAlchemy then discards the whole
        # stale pool.
        if pool is None:
            return create_engine(
                parsed, pool_pre_ping=False, pool_size=20, max_overflow=10,
                hide_parameters=True, connect_args=connect_args,
            )  # fmt: skip
        # The whole bound is pool_size (no overflow): connections in use stay open across
        # bursts of load, and release_idle trims what is left idle afterwards.
        return create_engine(
            parsed, poolclass=_TrimmablePool, pool_size=pool.max_connections, max_overflow=0,
            pool_pre_ping=False, hide_parameters=True, connect_args=connect_args,
        )  # fmt: skip
    database = parsed.database or ""
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False},
        # Parameters hold names, numbers and message bodies: keep them out of errors and logs.
        "hide_parameters": True,
    }
    if database in {"", ":memory:"}:
        # One shared connection: each new connection to :memory: would be an empty database.
        kwargs["poolclass"] = StaticPool
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **kwargs)
    _configure_sqlite(engine, in_memory=database in {"", ":memory:"})
    return engine


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from pysqlite so the "begin" hook below decides how to start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the write lock up front: a deferred BEGIN that upgrades later can fail
        # with "database is locked" at once instead of waiting out the busy timeout.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_head(engine: Engine) -> None:
    """Run every migration up to head inside one transaction; raises LedgerError."""
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            command.upgrade(alembic_config(connection), "head")
    except SQLAlchemyError as exc:
        raise LedgerError(f"migrating the ledger failed: {exc}") from exc


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first upgrade."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise LedgerError(f"reading the ledger revision failed: {exc}") from exc


def head_revision() -> str | None:
    """The newest revision shipped with this version of dunning."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revision(revision: str) -> bool:
    """Whether this version ships ``revision`` (False: a newer release migrated the database)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False
