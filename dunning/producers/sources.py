"""Account sources: CSV and JSONL files and a SQL query, all streaming ``Account | BadRow``.

Every source is a generator that holds one row at a time, so a 1,000,000-row book runs in
bounded memory. A row that breaks a rule becomes a :class:`BadRow` with its line number (for
CSV the physical line where the row starts, counting quoted newlines; for JSONL the line; for
SQL the 1-based row number) and the reason; the run goes on. Only a problem with the whole
source (unreadable file, header without a required column, failing query) raises ConfigError.

A second row with an ``account_id`` already seen is a bad row naming the line of the first
(the intent id derives from it, so the second person would otherwise vanish). A CSV quote
left open swallows the rows after it into one field: a record whose inner lines read as rows
of their own is reported at the line the quote opened, and each swallowed line as a bad row.
The SQL query runs in a read-only transaction and must be a SELECT.

Unknown columns are refused rather than ignored, because a misspelt flag column
(``sms_optout``) would otherwise silently clear an opt-out; columns prefixed ``x_`` are the
lender's own and are ignored.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

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
from dunning.urls import mask_url

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


class _FirstLines:
    """The line each account_id was first seen on, kept in a private temporary SQLite file.

    A dict of a 1,000,000-row book's ids would take ~100 MB; SQLite keeps them on disk behind
    a page cache of about 2 MB, at a few microseconds per row.
    """

    def __init__(self) -> None:
        # "": a private file deleted on close. A source is read by one consumer at a time, but
        # not necessarily from the thread that started it.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction, never committed: nothing is fsynced

    def first_line(self, account_id: str, line: int) -> int | None:
        """None the first time ``account_id`` comes (remembered at ``line``), else that line."""
        inserted = self._db.execute(
            "INSERT INTO seen VALUES (?, ?) ON CONFLICT DO NOTHING", (account_id, line)
        )
        if inserted.rowcount == 1:
            return None
        row = self._db.execute("SELECT line FROM seen WHERE id = ?", (account_id,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()


def _validate(row: Mapping[str, str], line: int, seen: _FirstLines) -> Account | BadRow:
    try:
        account = account_from_row(row)
    except RowError as exc:
        return BadRow(line, str(exc))
    first = seen.first_line(account.account_id, line)
    if first is not None:
        return BadRow(
            line, f"account_id: {account.account_id!r} was already on line {first}; skipped"
        )
    return account


class _LineTap:
    """The physical lines csv.reader consumes, kept for the record being read."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self.lines: list[str] = []
        self.count = 0

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self._handle)
        self.lines.append(line)
        self.count += 1
        return line


def _swallows_rows(lines: Sequence[str], width: int) -> bool:
    """True when a line inside a multi-line record reads as a whole row of its own (balanced
    quotes, the header's number of fields): a quote was left open and the rows after it became
    one field. The lines of a legitimately quoted value spanning lines fail the test: the line
    that closes the value holds an odd number of quotes, the others far fewer fields."""
    return any(
        line.count('"') % 2 == 0 and len(next(csv.reader([line]), [])) == width
        for line in lines[1:]
    )


def _swallowed(start: int, lines: int, why: str) -> Iterator[BadRow]:
    for line in range(start + 1, start + lines):
        yield BadRow(line, f"swallowed by {why} on line {start}; fix it and run again")


def csv_accounts(path: str | Path) -> Iterator[Account | BadRow]:
    """Stream the accounts of a UTF-8 CSV file with a header row (a BOM is tolerated)."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115  # held by the generator
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle, closing(_FirstLines()) as seen:
        tap = _LineTap(handle)
        reader = csv.reader(tap)
        try:
            header = [cell.strip() for cell in next(reader)]
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: line 1: unreadable header: {exc}") from exc
        _check_columns(header, f"{path}: line 1")
        while True:
            start = tap.count + 1
            tap.lines.clear()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                hint = " (a quote left open on this line?)" if len(tap.lines) > 1 else ""
                yield BadRow(start, f"malformed CSV: {exc}{hint}")
                if not tap.lines:  # no progress: the reader is stuck
                    return
                yield from _swallowed(start, len(tap.lines), "the malformed record")
                continue
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: near line {start}: not UTF-8 ({exc.reason})") from exc
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if len(tap.lines) > 1 and _swallows_rows(tap.lines, len(header)):
                last = start + len(tap.lines) - 1
                yield BadRow(
                    start,
                    f"unterminated quote: a quoted field opens on this line and runs to line"
                    f" {last}, taking the rows in between with it (closing quote missing?)",
                )
                yield from _swallowed(start, len(tap.lines), "the quote opened")
                continue
            if len(cells) != len(header):
                yield BadRow(start, f"has {len(cells)} fields, the header has {len(header)}")
                continue
            yield _validate(dict(zip(header, cells, strict=True)), start, seen)


def jsonl_accounts(path: str | Path) -> Iterator[Account | BadRow]:
    """Stream the accounts of a JSON Lines file: one flat object per line, CSV column names."""
    try:
        # utf-8-sig: a byte-order mark would otherwise make the first line invalid JSON.
        handle = open(path, encoding="utf-8-sig")  # noqa: SIM115  # held by the generator
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle, closing(_FirstLines()) as seen:
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
            yield _jsonl_row(text, line, seen)


def _jsonl_row(text: str, line: int, seen: _FirstLines) -> Account | BadRow:
    try:
        # Decimal keeps amounts exact (0.1 stays 0.1, never 0.1000000000000000055).
        data: Any = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        return BadRow(line, f"not JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return BadRow(line, "not a flat object: values nested too deeply to read")
    except ValueError as exc:  # an integer past Python's 4,300-digit conversion limit
        return BadRow(line, f"not usable JSON: {str(exc).split(';')[0]}")
    if not isinstance(data, dict):
        return BadRow(line, f"expected an object, got {type(data).__name__}")
    unknown = sorted(k for k in data if k not in _KNOWN and not str(k).startswith("x_"))
    if unknown:
        return BadRow(line, f"unknown field(s) {', '.join(unknown)}")
    if any(isinstance(v, dict | list) for v in data.values()):
        return BadRow(line, "nested values are not allowed; use the flat CSV column names")
    return _validate({k: as_text(v) for k, v in data.items()}, line, seen)


# A query may only read: the first word, after comments and parentheses, must be one of these.
_READING_QUERY = re.compile(
    r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*(select|with|values|table)\b", re.I | re.S
)
_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*(\S{1,20})", re.S)


def _check_reads(query: str, shown: str) -> None:
    if _READING_QUERY.match(query) is None:
        found = _FIRST_WORD.match(query)
        word = found.group(1) if found else "nothing"
        raise ConfigError(
            f"{shown}: the accounts query must only read (SELECT, WITH, VALUES or TABLE);"
            f" it starts with {word!r}"
        )


def _wrote(exc: BaseException) -> bool:
    """True when the database refused a write because the transaction is read-only."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == "25006" or "readonly database" in str(orig)


def sql_accounts(
    url: str,
    query: str = DEFAULT_QUERY,
    *,
    params: Mapping[str, Any] | None = None,
    batch_size: int = 1000,
) -> Iterator[Account | BadRow]:
    """Stream the rows of ``query`` against any SQLAlchemy URL (server-side cursor if possible).

    Result columns take the CSV column names (alias them in the query). The query runs in a
    read-only transaction (SQLite: ``PRAGMA query_only``; elsewhere ``SET TRANSACTION READ
    ONLY``), so it can change nothing. Raises ConfigError when the URL, the connection or the
    query fails, or when the query would write.
    """
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = mask_url(url)
    _check_reads(query, shown)
    try:
        make_url(url)
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"accounts source {shown!r}: {exc}") from exc
    except ValueError as exc:  # its message may quote a password read as the port
        raise ConfigError(f"accounts source {shown!r}: the port is not a number") from exc
    try:
        with engine.connect() as connection, closing(_FirstLines()) as seen:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA query_only = ON")
            else:  # the first statement of the transaction, as PostgreSQL requires
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = connection.execution_options(
                stream_results=True, yield_per=batch_size
            ).execute(text(query), dict(params or {}))
            _check_columns(list(result.keys()), f"{shown}: query result")
            for number, row in enumerate(result.mappings(), start=1):
                yield _validate({str(k): as_text(v) for k, v in row.items()}, number, seen)
    except SQLAlchemyError as exc:
        if _wrote(exc):
            raise ConfigError(
                f"{shown}: the accounts query tried to write; it runs read-only and may only"
                " read (nothing was changed)"
            ) from exc
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
