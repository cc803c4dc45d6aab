"""The bundled CJK font: Noto Sans CJK SC from PyPI, converted once to TrueType outlines.

reportlab embeds TrueType (``glyf``) outlines only, while the Noto CJK fonts on PyPI
(``noto-cjk-sans-otc``, SIL Open Font License 1.1) carry CFF outlines. The Simplified Chinese face
is converted once with fontTools (cubic to quadratic curves within 1 font unit of 1,000) and
cached; every later process loads the cached file in about a tenth of a second. The conversion
takes about half a minute of one core, so it runs under a file lock: concurrent workers wait
for the first one instead of converting again. The cache file is named after the source's
SHA-256 and the converter version, so a new font release or converter gives a new file.

The converted font is renamed ("Dunning Sans CJK SC"): it is a modified version of the original
and is used only to embed subsets in letters, which the licence allows.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from pathlib import Path

import structlog

from dunning.errors import ConfigError

__all__ = ["BUNDLED_FAMILY", "bundled_font_path", "default_cache_dir"]

log = structlog.get_logger(__name__)

BUNDLED_FAMILY = "Dunning Sans CJK SC"
_POSTSCRIPT_NAME = "DunningSansCJKsc-Regular"
_SOURCE_FACE = "Noto Sans CJK SC"
_CONVERTER_VERSION = "1"
# Cubic-to-quadratic tolerance in font units (the fonts are 1,000 units to the em).
_MAX_ERR_UNITS = 1.0
_HASH_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dunning/fonts``, else ``~/.cache/dunning/fonts``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dunning" / "fonts"


def _source_collection() -> Path:
    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError as exc:
        raise ConfigError(
            "the bundled CJK font package is not installed (pip install noto-cjk-sans-otc)"
        ) from exc
    return Path(str(FONT_PATH))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_font_path(cache_dir: Path | None = None) -> Path:
    """The converted TrueType file, converting it first when the cache has none.

    Raises ConfigError when the font package is missing or the cache cannot be written.
    """
    source = _source_collection()
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    target = folder / f"dunning-sans-cjk-sc-{_sha256(source)[:16]}-v{_CONVERTER_VERSION}.ttf"
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".convert.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.is_file():  # another process may have finished while we waited
                _convert(source, target)
    except OSError as exc:
        raise ConfigError(f"cannot write the letter font cache in {folder}: {exc}") from exc
    return target


def _convert(source: Path, target: Path) -> None:
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTCollection, TTFont, newTable

    started = time.monotonic()
    log.info("letter_font.converting", source=source.name, face=_SOURCE_FACE, once=True)
    collection = TTCollection(str(source), lazy=True)
    faces = [f for f in collection.fonts if f["name"].getDebugName(4) == _SOURCE_FACE]
    if not faces:
        raise ConfigError(f"{source.name} has no face named {_SOURCE_FACE!r}")
    font: TTFont = faces[0]
    glyph_set = font.getGlyphSet()
    order = font.getGlyphOrder()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        # CFF contours run counter-clockwise, TrueType's clockwise.
        glyph_set[name].draw(Cu2QuPen(pen, _MAX_ERR_UNITS, reverse_direction=True))
        glyf[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    for table in ("CFF ", "VORG"):
        if table in font:
            del font[table]
    _truetype_maxp(font)
    font["head"].glyphDataFormat = 0
    font.sfntVersion = "\x00\x01\x00\x00"
    _rename(font)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(handle)
    try:
        font.save(tmp_name)
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    log.info(
        "letter_font.converted",
        font_path=str(target),
        glyphs=len(order),
        seconds=round(time.monotonic() - started, 1),
    )


def _truetype_maxp(font: object) -> None:
    from fontTools.ttLib import newTable

    maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.numGlyphs = len(font.getGlyphOrder())  # type: ignore[attr-defined]
    for field in (
        "maxPoints", "maxContours", "maxCompositePoints", "maxCompositeContours",
        "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
        "maxStackElements", "maxSizeOfInstructions", "maxComponentElements",
        "maxComponentDepth",
    ):  # fmt: skip
        setattr(maxp, field, 0)
    maxp.maxZones = 1
    font["maxp"] = maxp  # type: ignore[index]


def _rename(font: object) -> None:
    names = font["name"]  # type: ignore[index]
    family = {1: BUNDLED_FAMILY, 3: _POSTSCRIPT_NAME, 4: BUNDLED_FAMILY, 6: _POSTSCRIPT_NAME}
    for record in names.names:
        if record.nameID in family:
            record.string = family[record.nameID]
        elif record.nameID in (16, 17):
            record.string = BUNDLED_FAMILY if record.nameID == 16 else "Regular"


# `python -m dunning.channels.letter.font_outlines`: fill the cache ahead
if __name__ == "__main__":
    print(bundled_font_path())
