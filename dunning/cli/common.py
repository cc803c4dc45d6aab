"""Shared CLI plumbing: settings from the environment plus command-line overrides."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from dunning.errors import ConfigError, LedgerError
from dunning.logs import configure_logging
from dunning.settings import Settings

if TYPE_CHECKING:
    from dunning.ledger import Ledger

_T = TypeVar("_T")

__all__ = ["fail", "load_settings", "parse_instant", "read_ledger", "time_range"]

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
    """Open the ledger, run ``query`` on it, close it; a ledger fault exits 1 with its reason."""
    from dunning.ledger import Ledger

    try:
        ledger = Ledger.open(database_url)
        try:
            return query(ledger)
        finally:
            ledger.close()
    except (ConfigError, LedgerError) as exc:
        raise fail(str(exc), code=1) from None
