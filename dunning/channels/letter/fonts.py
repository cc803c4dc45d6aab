"""Finding a CJK TrueType font that reportlab can embed, or refusing to start without one.

Lawyer letters must show their Chinese text in any viewer, so the font is embedded (subset).
By default letters use the font dunning installs from PyPI (Noto Sans CJK SC, converted once to
TrueType outlines: :mod:`dunning.channels.letter.font_outlines`), so a fresh machine needs nothing
from the system. Operators who prefer an installed font set ``font_path = "system"`` (or a file) in
``[letter]``. reportlab's ``TTFont`` reads TrueType outlines only: WenQuanYi Micro Hei (Debian
``fonts-wqy-microhei``) works, CFF-based ``.otf`` files do not. A candidate counts only if it
loads and maps the Han characters letters use; ``fc-match :lang=zh`` happily answers DejaVu Sans
on a machine without CJK fonts, so its answer is checked like any other.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from dunning.errors import ConfigError

__all__ = [
    "DEFAULT_FONT_PATHS",
    "INSTALL_HINT",
    "SYSTEM_FONTS",
    "CjkFont",
    "find_cjk_font",
    "font_search_paths",
    "register_font",
    "system_font_candidates",
]

log = structlog.get_logger(__name__)

DEFAULT_FONT_PATHS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),  # Fedora, Arch
    Path("/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/System/Library/Fonts/STHeiti Light.ttc"),  # macOS, TrueType outlines
    Path("C:/Windows/Fonts/simhei.ttf"),
)
INSTALL_HINT = (
    "no CJK TrueType font found; lawyer letters would print blank Chinese text. Leave font_path "
    "empty in the [letter] section of config/channels.toml to use the bundled font, install one "
    '(Debian/Ubuntu: `apt-get install fonts-wqy-microhei`) and set font_path = "system", or set '
    "font_path to a TrueType .ttf/.ttc file (reportlab cannot embed CFF .otf outlines)"
)
# The value of ``font_path`` that searches the fonts installed on the machine.
SYSTEM_FONTS = "system"
# Characters every zh-CN letter prints; a font missing any of them is not a CJK font for us.
_PROBE = "律师函债权人欠款金额"
_FONT_SUFFIXES = {".ttf", ".ttc"}
_FC_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class CjkFont:
    """A TrueType file (and face index inside a ``.ttc`` collection) with Han glyphs."""

    path: Path
    subfont_index: int = 0
    name: str = "DunningCJK"


def _expand(candidates: Iterable[Path]) -> list[Path]:
    """Files as given; folders scanned (sorted, recursively) for .ttf/.ttc files."""
    files: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir():
            files.extend(
                sorted(p for p in candidate.rglob("*") if p.suffix.lower() in _FONT_SUFFIXES)
            )
        elif candidate.is_file():
            files.append(candidate)
    return files


def _fontconfig_paths() -> list[Path]:
    """What fontconfig lists for Chinese; empty when fontconfig is not installed."""
    found: list[Path] = []
    queries = (("fc-match", ["-f", "%{file}", ":lang=zh"]), ("fc-list", [":lang=zh", "file"]))
    for tool, args in queries:
        exe = shutil.which(tool)
        if exe is None:
            continue
        try:
            out = subprocess.run(  # noqa: S603  fixed arguments, resolved executable
                [exe, *args], capture_output=True, text=True, timeout=_FC_TIMEOUT_S, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.replace("\n", "\0").split("\0"):
            path = line.strip().rstrip(":").strip()
            if path:
                found.append(Path(path))
    return found


def _usable(path: Path, subfont_index: int) -> bool:
    try:
        face = TTFont("probe", str(path), subfontIndex=subfont_index).face
    except (TTFError, OSError, ValueError, KeyError, IndexError):
        # TTFError covers CFF outlines ("postscript outlines are not supported") and bad files.
        return False
    return all(ord(ch) in face.charToGlyph for ch in _PROBE)


def system_font_candidates() -> list[Path]:
    """The well-known system paths plus fontconfig's answers."""
    return [*DEFAULT_FONT_PATHS, *_fontconfig_paths()]


def font_search_paths(font_path: str) -> list[Path] | None:
    """Where ``font_path`` of ``[letter]`` says to look: None (the bundled font) when empty,
    the system's font paths for ``"system"``, else the one file or folder it names."""
    if not font_path:
        return None
    if font_path == SYSTEM_FONTS:
        return system_font_candidates()
    return [Path(font_path)]


def find_cjk_font(
    candidates: Sequence[Path] | None = None, *, cache_dir: Path | None = None
) -> CjkFont:
    """The bundled font, or the first usable CJK TrueType font among ``candidates``.

    ``None`` means the bundled font (converted into ``cache_dir`` on first use); an explicit
    sequence (files or folders, e.g. :func:`system_font_candidates`) is searched alone, so tests
    can point at an empty folder. Raises ConfigError with advice when nothing usable is found.
    """
    if candidates is None:
        from dunning.channels.letter.font_outlines import bundled_font_path

        path = bundled_font_path(cache_dir)
        if not _usable(path, 0):
            raise ConfigError(f"the bundled letter font {path} does not load; {INSTALL_HINT}")
        log.info("letter_font_found", font_path=str(path), bundled=True)
        return CjkFont(path=path)
    seen: set[Path] = set()
    for path in _expand(candidates):
        if path in seen:
            continue
        seen.add(path)
        if _usable(path, 0):
            log.info("letter_font_found", font_path=str(path))
            return CjkFont(path=path, subfont_index=0)
    raise ConfigError(INSTALL_HINT)


def register_font(font: CjkFont) -> str:
    """Register ``font`` with reportlab once per process; returns the name to use in styles."""
    if font.name not in pdfmetrics.getRegisteredFontNames():
        try:
            loaded = TTFont(font.name, str(font.path), subfontIndex=font.subfont_index)
        except (TTFError, OSError) as exc:
            raise ConfigError(f"cannot load CJK font {font.path}: {exc}") from exc
        _share_glyph_table(loaded.face)
        pdfmetrics.registerFont(loaded)
    return font.name


def _share_glyph_table(face: Any) -> None:
    """Hand reportlab's subsetter a view of the ``glyf`` table instead of a fresh copy.

    reportlab slices the whole ``glyf`` table out of the font file for every subset it writes:
    for a full CJK font that is a 15 MB copy per letter. The subsetter only cuts single glyphs
    out of it, so a view that copies just those glyphs serves it the same bytes.
    """
    copy_table = face.get_table
    position, length = face.get_table_pos("glyf")
    glyf = _GlyphTable(memoryview(face._ttf_data)[position : position + length])

    def get_table(tag: str) -> Any:
        return glyf if tag == "glyf" else copy_table(tag)

    face.get_table = get_table


class _GlyphTable:
    """A read-only table whose slices are ``bytes``, copied from the font file on demand."""

    __slots__ = ("_view",)

    def __init__(self, view: memoryview) -> None:
        self._view = view

    def __len__(self) -> int:
        return len(self._view)

    def __getitem__(self, index: slice) -> bytes:
        return bytes(self._view[index])
