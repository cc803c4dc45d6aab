"""Data printed through rich, escaped in one place.

rich reads ``[...]`` in every string it prints (``console.print``, table cells, titles, rules)
as markup: a reason like ``no [voice.senders.UK] section`` loses its bracketed part, and one
holding ``[/bold]`` raises MarkupError and ends the command. Every value that comes from data
(reasons, names, ids, paths, settings, provider statuses) goes through :func:`esc` or
:func:`add_data_row`; only the command's own literal styling stays markup.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

__all__ = ["add_data_row", "esc"]


def esc(value: object) -> str:
    """``value`` as markup that rich prints verbatim (``None`` as an empty string)."""
    return "" if value is None else escape(str(value))


def add_data_row(table: Table, *cells: object) -> None:
    """Add a row whose every cell is data, escaped."""
    table.add_row(*(esc(cell) for cell in cells))
