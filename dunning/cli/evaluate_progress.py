"""Progress of `dunning evaluate`: a live bar on a terminal, log events everywhere else
(dunning/producers/progress.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dunning.producers.progress import (
    PROGRESS_EVERY_ROWS,
    PROGRESS_EVERY_S,
    EvaluationProgress,
    LoggedProgress,
    ProgressFactory,
)

__all__ = ["evaluation_progress", "terminal_progress"]

_DISPLAY_STEP = 100  # rows between updates of the live display (it redraws 10 times a second)


class _DisplayedProgress:
    def __init__(self, progress: Progress, total: int | None) -> None:
        self._progress = progress
        self._task = progress.add_task("evaluate", total=total, intents=0, bad_rows=0)
        self._shown = 0

    def update(self, rows_read: int, intents: int, bad_rows: int) -> None:
        if rows_read - self._shown < _DISPLAY_STEP:
            return
        self._shown = rows_read
        self._progress.update(self._task, completed=rows_read, intents=intents, bad_rows=bad_rows)


@contextmanager
def evaluation_progress(
    console: Console,
    *,
    total: int | None,
    every_rows: int = PROGRESS_EVERY_ROWS,
    every_s: float = PROGRESS_EVERY_S,
) -> Iterator[EvaluationProgress]:
    """A live bar (rows read of ``total``, intents, bad rows, elapsed, ETA) when ``console`` is
    a terminal; :class:`LoggedProgress` otherwise."""
    if not console.is_terminal:
        yield LoggedProgress(total=total, every_rows=every_rows, every_s=every_s)
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]evaluating[/] rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[intents]:,} intents, {task.fields[bad_rows]:,} bad rows"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield _DisplayedProgress(progress, total)


def terminal_progress(
    console: Console, *, every_rows: int = PROGRESS_EVERY_ROWS
) -> ProgressFactory:
    """The :data:`ProgressFactory` of :func:`evaluation_progress` on ``console``."""

    def open_progress(total: int | None) -> AbstractContextManager[EvaluationProgress]:
        return evaluation_progress(console, total=total, every_rows=every_rows)

    return open_progress
