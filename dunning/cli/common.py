"""Shared CLI plumbing: settings from the environment plus command-line overrides, and the
ledger opened for commands that must not migrate it."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from dunning.errors import ConfigError, LedgerError
from dunning.logs import configure_logging
from dunning.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from dunning.ledger import Ledger

_T = TypeVar("_T")

__all__ = [
    "BROKER_HELP",
    "connect_ledger",
    "fail",
    "load_settings",
    "open_ledger",
    "parse_instant",
    "read_ledger",
    "safe_url",
    "sqlite_file",
    "time_range",
]

BROKER_HELP = (
    "Broker URL, or the comma-separated URLs of a cluster's nodes (default $DUNNING_BROKER_URL)."
)
_AGO = re.compile(r"^(\d+)([mhd])$")
_UNITS_S = {"m": 60, "h": 3600, "d": 86400}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` to stderr and return an Exit to raise (exit code 2: bad input)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    """Settings from DUNNING_* variables; options given on the command line win."""
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    settings = dataclasses.replace(settings, **changes)
    configure_logging(settings.log_format, settings.log_level)
    return settings


def parse_instant(text: str, now: datetime) -> datetime:
    """``30m``, ``24h``, ``7d`` before ``now``, or an ISO instant with an offset (ValueError)."""
    ago = _AGO.match(text.strip())
    if ago:
        return now - timedelta(seconds=int(ago.group(1)) * _UNITS_S[ago.group(2)])
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} needs an offset or Z")
    return value


def time_range(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``--since``/``--until`` as instants (``until`` defaults to ``now``); exits 2 when bad."""
    try:
        return parse_instant(since, now), now if until is None else parse_instant(until, now)
    except ValueError as exc:
        raise fail(str(exc)) from None


def read_ledger(database_url: str, query: Callable[[Ledger], _T]) -> _T:
    """Open the ledger (never migrating it), run ``query`` on it, close it; a ledger fault
    exits 1 with its reason."""
    ledger = open_ledger(database_url)
    try:
        return query(ledger)
    except (ConfigError, LedgerError) as exc:
        raise fail(str(exc), code=1) from None
    finally:
        ledger.close()


def safe_url(url: str) -> str:
    """``url`` with any password (user part or query parameter) masked, for messages."""
    from dunning.urls import mask_url

    return mask_url(url)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None  # make_engine names what is wrong with it
    if parsed.get_backend_name() != "sqlite" or parsed.database in {None, "", ":memory:"}:
        return None
    return Path(str(parsed.database)).expanduser()


def connect_ledger(database_url: str, *, create: bool = False) -> Engine:
    """An engine on the ledger database, after one connection proved that it answers.

    A SQLite file that does not exist is created only with ``create`` (`dunning db upgrade`);
    otherwise that, and a database that is down, exit 1 naming the URL (password masked).
    A URL that cannot be parsed exits 2.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from dunning.ledger import engine as engines

    where = safe_url(database_url)
    path = sqlite_file(database_url)
    if path is not None and not create and not path.exists():
        raise fail(
            f"no ledger at {where}: the file does not exist (`dunning db upgrade` creates it)",
            code=1,
        )
    try:
        engine = engines.make_engine(database_url)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if path is not None:
            raise fail(f"cannot open the ledger at {where}: {reason}", code=1) from None
        message = f"the ledger database {where} is down or unreachable: {reason}"
        raise fail(message, code=1) from None
    return engine


def open_ledger(database_url: str) -> Ledger:
    """The ledger for a command that reads or works on it but never migrates it.

    Exits 1 when the database is down, or its schema is not the one this version needs (never
    migrated, behind: run `dunning db upgrade`; or migrated by a newer release).
    """
    from dunning.ledger import Ledger

    engine = connect_ledger(database_url)
    try:
        problem = _schema_problem(engine, safe_url(database_url))
    except LedgerError as exc:
        problem = str(exc)
    if problem is not None:
        engine.dispose()
        raise fail(problem, code=1)
    return Ledger(engine)


def _schema_problem(engine: Engine, where: str) -> str | None:
    from dunning.ledger import engine as engines

    current, head = engines.current_revision(engine), engines.head_revision()
    if current == head:
        return None
    if current is None:
        return (
            f"the ledger at {where} has never been migrated (it has no tables): "
            "run `dunning db upgrade` first"
        )
    if not engines.known_revision(current):
        return (
            f"the ledger at {where} is at revision {current}, newer than this version of dunning "
            f"knows (its newest is {head}): use the release that migrated it"
        )
    return (
        f"the ledger at {where} is at revision {current}, this version of dunning needs {head}: "
        "run `dunning db upgrade`"
    )
