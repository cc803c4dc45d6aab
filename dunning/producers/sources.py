"""Account sources: CSV and JSONL files and a SQL query, all streaming ``Account | BadRow``.

Every source is a generator that holds one row at a time, so a 1,000,000-row book runs in
bounded memory. A row that breaks a rule becomes a :class:`BadRow` with its line number (for
CSV the physical line where the row starts, counting quoted newlines; for JSONL the line; for
SQL the 1-based row number) and the reason; the run goes on. Only a problem with the whole
source (unreadable file, header without a required column, failing query) raises ConfigError.

Unknown columns are refused rather than ignored, because a misspelt flag column
(``sms_optout``) would otherwise silently clear an opt-out; columns prefixed ``x_`` are the
lender's own and are ignored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from dunning.errors import ConfigError
from dunning.producers.accounts import (
    COLUMNS,
    REQUIRED_COLUMNS,
    Account,
    RowError,
    account_from_row,
    as_text,
)

__all__ = [
    "BadRow",
    "BadRowLog",
    "accounts_only",
    "csv_accounts",
    "jsonl_accounts",
    "open_accounts",
    "sql_accounts",
]

log = structlog.get_logger(__name__)
_KNOWN = frozenset(COLUMNS)
DEFAULT_QUERY = "SELECT * FROM accounts"


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was skipped: where it is and why."""

    line: int
    reason: str


def _check_columns(columns: Sequence[str], where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(f"{where}: missing required column(s) {', '.join(missing)}")
    unknown = sorted({c for c in columns if c not in _KNOWN and not c.startswith("x_")})
    if unknown:
        raise ConfigError(
            f"{where}: unknown column(s) {', '.join(unknown)} (prefix the lender's own "
            f"columns with x_; see docs/accounts.md)"
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ConfigError(f"{where}: duplicated column(s) {', '.join(duplicated)}")


def _validate(row: Mapping[str, str], line: int) -> Account | BadRow:
    try:
        return account_from_row(row)
    except RowError as exc:
        return BadRow(line, str(exc))


def csv_accounts(path: str | Path) -> Iterator[Account | BadRow]:
    """Stream the accounts of a UTF-8 CSV file with a header row (a BOM is tolerated)."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115  # held by the generator
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = [cell.strip() for cell in next(reader)]
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: line 1: unreadable header: {exc}") from exc
        _check_columns(header, f"{path}: line 1")
        previous = reader.line_num
        while True:
            start = previous + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRow(start, f"malformed CSV: {exc}")
                if reader.line_num == previous:  # no progress: the reader is stuck
                    return
                previous = reader.line_num
                continue
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: near line {start}: not UTF-8 ({exc.reason})") from exc
            previous = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if len(cells) != len(header):
                yield BadRow(start, f"has {len(cells)} fields, the header has {len(header)}")
                continue
            yield _validate(dict(zip(header, cells, strict=True)), start)


def jsonl_accounts(path: str | Path) -> Iterator[Account | BadRow]:
    """Stream the accounts of a JSON Lines file: one flat object per line, CSV column names."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115  # held by the generator
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle:
        line = 0
        while True:
            try:
                text = handle.readline()
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: near line {line + 1}: not UTF-8") from exc
            if not text:
                return
            line += 1
            if not text.strip():
                continue
            yield _jsonl_row(text, line)


def _jsonl_row(text: str, line: int) -> Account | BadRow:
    try:
        # Decimal keeps amounts exact (0.1 stays 0.1, never 0.1000000000000000055).
        data: Any = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        return BadRow(line, f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(data, dict):
        return BadRow(line, f"expected an object, got {type(data).__name__}")
    unknown = sorted(k for k in data if k not in _KNOWN and not str(k).startswith("x_"))
    if unknown:
        return BadRow(line, f"unknown field(s) {', '.join(unknown)}")
    if any(isinstance(v, dict | list) for v in data.values()):
        return BadRow(line, "nested values are not allowed; use the flat CSV column names")
    return _validate({k: as_text(v) for k, v in data.items()}, line)


def sql_accounts(
    url: str,
    query: str = DEFAULT_QUERY,
    *,
    params: Mapping[str, Any] | None = None,
    batch_size: int = 1000,
) -> Iterator[Account | BadRow]:
    """Stream the rows of ``query`` against any SQLAlchemy URL (server-side cursor if possible).

    Result columns take the CSV column names (alias them in the query). Raises ConfigError
    when the URL, the connection or the query fails.
    """
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"accounts source {url.rsplit('@', maxsplit=1)[-1]!r}: {exc}") from exc
    try:
        with engine.connect() as connection:
            result = connection.execution_options(
                stream_results=True, yield_per=batch_size
            ).execute(text(query), dict(params or {}))
            _check_columns(list(result.keys()), f"{shown}: query result")
            for number, row in enumerate(result.mappings(), start=1):
                yield _validate({str(k): as_text(v) for k, v in row.items()}, number)
    except SQLAlchemyError as exc:
        raise ConfigError(f"{shown}: accounts query failed: {type(exc).__name__}: {exc}") from exc
    finally:
        engine.dispose()


def open_accounts(location: str | Path, *, query: str | None = None) -> Iterator[Account | BadRow]:
    """The source for ``location``: a SQLAlchemy URL, a ``.csv`` or a ``.jsonl``/``.ndjson``."""
    text = str(location)
    if "://" in text:
        return sql_accounts(text, query or DEFAULT_QUERY)
    if query is not None:
        raise ConfigError(f"{text}: a query only applies to a database URL")
    suffix = Path(text).suffix.lower()
    if suffix == ".csv":
        return csv_accounts(text)
    if suffix in {".jsonl", ".ndjson"}:
        return jsonl_accounts(text)
    raise ConfigError(f"{text}: unknown accounts format (expected .csv, .jsonl or a database URL)")


@dataclass
class BadRowLog:
    """Counts bad rows and keeps the first ``keep`` of them for the report."""

    keep: int = 20
    count: int = 0
    first: list[BadRow] = field(default_factory=list)

    def __call__(self, bad: BadRow) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(bad)
        log.warning("bad_account_row", line=bad.line, reason=bad.reason)


def accounts_only(
    rows: Iterable[Account | BadRow], on_bad: Callable[[BadRow], None]
) -> Iterator[Account]:
    """Pass the accounts through and hand every bad row to ``on_bad`` (lazily, in order)."""
    for row in rows:
        if isinstance(row, BadRow):
            on_bad(row)
        else:
            yield row
