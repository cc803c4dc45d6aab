"""The signature and seal images, decoded and compressed once per process instead of per letter.

reportlab's ``Image`` flowable hands ``canvas.drawImage`` a file name, and every new PDF
document decodes that PNG, splits its alpha channel and zlib-compresses both again: about a
quarter of a one-page letter's render time for two small images that never change. A
:class:`StampImage` keeps the finished image XObject (pixels and soft mask, already compressed)
per file and registers a shallow copy of it in each document, under the same name reportlab
would give it, so the PDF carries the same bytes as before.

An edited image file is picked up: the cache key includes its size and modification time.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable

__all__ = ["StampImage", "image_xobject"]

_MASK = "auto"  # transparent PNG backgrounds stay transparent (alpha as a soft mask)
_CACHED_FILES = 32  # a few law firms' signatures and seals; old versions fall out


@dataclass(frozen=True, slots=True)
class _Prototype:
    """An image XObject ready to format, and its soft mask (None for an opaque image)."""

    image: pdfdoc.PDFImageXObject
    smask: pdfdoc.PDFImageXObject | None


@functools.lru_cache(maxsize=_CACHED_FILES)
def _load(path: str, size: int, mtime_ns: int) -> _Prototype:
    # size and mtime_ns are part of the cache key only: a replaced file is a new entry.
    del size, mtime_ns
    # Named and built as reportlab's canvas.drawImage does for the ImageReader that the Image
    # flowable hands it, so the PDF keeps the same bytes.
    reader = ImageReader(path)
    rgb = reader.getRGBData()
    alpha = reader._dataA
    name = pdfdoc._digester(rgb + (alpha.getRGBData() if alpha else _MASK.encode()))
    image = pdfdoc.PDFImageXObject(name, reader, mask=_MASK)
    image.name = name
    smask: pdfdoc.PDFImageXObject | None = getattr(image, "_smask", None)
    if smask is not None:
        del image._smask
    return _Prototype(image, smask)


def image_xobject(path: Path) -> _Prototype:
    """The compressed image (and soft mask) for ``path``, decoded at most once per version.

    Raises OSError (naming the file) when it is missing or not an image: the letter channel
    treats that as a transient fault of the firm's asset share.
    """
    stat = path.stat()
    return _load(str(path), stat.st_size, stat.st_mtime_ns)


def _register(canvas: Canvas, prototype: _Prototype) -> str:
    """Add the image to ``canvas``'s document once; returns its XObject resource name."""
    doc: Any = canvas._doc
    name = prototype.image.name
    reg_name: str = doc.getXObjectName(name)
    if reg_name in doc.idToObject:
        return reg_name
    # A shallow copy per document: the compressed bytes are shared, the references are not.
    image = copy.copy(prototype.image)
    canvas._setXObjects(image)
    doc.Reference(image, reg_name)
    doc.addForm(name, image)
    if prototype.smask is not None:
        mask_reg_name = doc.getXObjectName(prototype.smask.name)
        if mask_reg_name in doc.idToObject:
            image.smask = pdfdoc.PDFObjectReference(mask_reg_name)
        else:
            smask = copy.copy(prototype.smask)
            canvas._setXObjects(smask)
            image.smask = doc.Reference(smask, mask_reg_name)
    return reg_name


class StampImage(Flowable):  # type: ignore[misc]  # reportlab ships no type hints
    """A fixed-size image from a file whose decoded, compressed form is shared by all letters."""

    def __init__(self, path: Path, width: float, height: float) -> None:
        super().__init__()
        self._prototype = image_xobject(path)
        self.width = width
        self.height = height
        self.hAlign = "CENTER"  # as reportlab's Image: placed alike outside a table cell too

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        canvas._currentPageHasImages = 1
        reg_name = _register(canvas, self._prototype)
        canvas.saveState()
        canvas.translate(0, 0)  # as drawImage writes it: keeps the page stream unchanged
        canvas.scale(self.width, self.height)
        canvas._code.append(f"/{reg_name} Do")
        canvas.restoreState()
        canvas._formsinuse.append(self._prototype.image.name)  # the page's XObject resources
