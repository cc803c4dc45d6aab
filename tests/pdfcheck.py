"""Reading PDFs in tests with pypdf: text, fonts (embedded or not), pages and their size."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

__all__ = ["PdfFont", "fonts", "page_count", "page_size_pt", "text"]


@dataclass(frozen=True)
class PdfFont:
    name: str
    subtype: str
    embedded: bool


def _reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def text(pdf: bytes) -> str:
    """The text of every page, as a viewer would copy it."""
    return "\n".join(page.extract_text() or "" for page in _reader(pdf).pages)


def page_count(pdf: bytes) -> int:
    return len(_reader(pdf).pages)


def page_size_pt(pdf: bytes, page: int = 0) -> tuple[int, int]:
    box = _reader(pdf).pages[page].mediabox
    return round(float(box.width)), round(float(box.height))


def _descriptor_embeds(font: Any) -> bool:
    descendants = font.get("/DescendantFonts")
    if descendants is not None:
        return all(_descriptor_embeds(d.get_object()) for d in descendants)
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return False
    descriptor = descriptor.get_object()
    return any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))


def fonts(pdf: bytes) -> list[PdfFont]:
    """Every font any page uses (deduplicated by object), with whether its program is embedded."""
    seen: dict[int, PdfFont] = {}
    for page in _reader(pdf).pages:
        resources = page.get("/Resources")
        if resources is None:
            continue
        table = resources.get_object().get("/Font")
        if table is None:
            continue
        for ref in table.get_object().values():
            font = ref.get_object()
            seen[id(font)] = PdfFont(
                name=str(font.get("/BaseFont", "")).lstrip("/"),
                subtype=str(font.get("/Subtype", "")).lstrip("/"),
                embedded=_descriptor_embeds(font),
            )
    return list(seen.values())
