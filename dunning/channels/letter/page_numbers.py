"""Page numbers that know the page count: "第 1 页 / 共 3 页", "Page 1 of 3".

A page's footer is drawn before the pages after it exist, so the canvas keeps each finished
page's state and draws every footer when the document is saved, with the total then known (the
usual reportlab two-phase canvas; one layout pass, no second build).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

__all__ = ["numbered_canvas", "page_label"]


def page_label(locale: str, page: int, total: int) -> str:
    """The page-number line in the letter's language."""
    if locale.startswith("zh"):
        return f"第 {page} 页 / 共 {total} 页"
    return f"Page {page} of {total}"


def numbered_canvas(font_name: str, locale: str, prefix: str) -> Callable[..., Canvas]:
    """A canvas class for ``SimpleDocTemplate.build(canvasmaker=...)`` whose footer reads
    ``<prefix> · <page label>`` centred 10 mm above the bottom edge."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab ships no type hints
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802  reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.saveState()
                self.setFont(font_name, 8)
                label = page_label(locale, self.getPageNumber(), total)
                width = self._pagesize[0]
                self.drawCentredString(width / 2, 10 * mm, f"{prefix} · {label}")
                self.restoreState()
                super().showPage()
            super().save()

    return NumberedCanvas
