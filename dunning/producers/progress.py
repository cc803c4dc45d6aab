"""Progress of an evaluation run: ``evaluation_progress`` log events every N rows.

A book of 50,000 rows takes tens of seconds; under cron, systemd or docker nothing is a
terminal, so a run would stay silent until its summary. ``evaluation_progress`` events (rows
read, intents, bad rows, rate, and the ETA when the total is known) are logged every
``every_rows`` rows and at least every ``every_s`` seconds. `dunning evaluate` shows a live bar
instead when it runs on a terminal (dunning/cli/evaluate_progress.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import structlog

__all__ = [
    "PROGRESS_EVERY_ROWS",
    "PROGRESS_EVERY_S",
    "EvaluationProgress",
    "LoggedProgress",
    "ProgressFactory",
    "count_rows",
    "logged_progress",
]

log = structlog.get_logger(__name__)
PROGRESS_EVERY_ROWS = 10_000
PROGRESS_EVERY_S = 10.0
_CHUNK = 1 << 20


class EvaluationProgress(Protocol):
    def update(self, rows_read: int, intents: int, bad_rows: int) -> None:
        """Called after every evaluated account with the running totals."""


#: Opens the progress of one run, given the rows it expects (None: unknown).
ProgressFactory = Callable[[int | None], AbstractContextManager[EvaluationProgress]]


def count_rows(location: str) -> int | None:
    """The data rows of a .csv (lines less the header) or .jsonl file, by counting newlines;
    None for a database URL or a file that cannot be read (the source reports that itself).

    Quoted newlines and blank lines make it an estimate: good for a bar and an ETA only.
    """
    if "://" in location:
        return None
    path = Path(location)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".ndjson"}:
        return None
    lines = 0
    last = b"\n"
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError:
        return None
    if last != b"\n":
        lines += 1  # a last line without its newline
    return max(lines - 1, 0) if suffix == ".csv" else lines


class LoggedProgress:
    """``evaluation_progress`` log events every ``every_rows`` rows or ``every_s`` seconds."""

    def __init__(
        self,
        *,
        total: int | None,
        every_rows: int = PROGRESS_EVERY_ROWS,
        every_s: float = PROGRESS_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._total = total
        self._every_rows = every_rows
        self._every_s = every_s
        self._monotonic = monotonic
        self._start = self._last = monotonic()
        self._next_rows = every_rows

    def update(self, rows_read: int, intents: int, bad_rows: int) -> None:
        now = self._monotonic()
        if rows_read < self._next_rows and now - self._last < self._every_s:
            return
        self._last = now
        self._next_rows = (rows_read // self._every_rows + 1) * self._every_rows
        elapsed_s = now - self._start
        rate = rows_read / elapsed_s if elapsed_s > 0 else None
        fields: dict[str, object] = {
            "rows_read": rows_read,
            "intents": intents,
            "bad_rows": bad_rows,
            "elapsed_s": round(elapsed_s, 1),
            "rows_per_s": None if rate is None else round(rate, 1),
        }
        if self._total is not None:
            fields["total_rows"] = self._total
            left = max(self._total - rows_read, 0)
            fields["eta_s"] = round(left / rate) if rate else None
        log.info("evaluation_progress", **fields)


def logged_progress(
    every_rows: int = PROGRESS_EVERY_ROWS, every_s: float = PROGRESS_EVERY_S
) -> ProgressFactory:
    """A :data:`ProgressFactory` of :class:`LoggedProgress`."""

    @contextmanager
    def open_progress(total: int | None) -> Iterator[EvaluationProgress]:
        yield LoggedProgress(total=total, every_rows=every_rows, every_s=every_s)

    return open_progress
