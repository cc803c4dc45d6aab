"""Finding a CJK TrueType font that reportlab can embed, or refusing to start without one.

Lawyer letters must show their Chinese text in any viewer, so the font is embedded (subset).
reportlab's ``TTFont`` reads TrueType outlines only: WenQuanYi Micro Hei (Debian
``fonts-wqy-microhei``) works, the CFF-based Noto CJK ``.ttc``/``.otf`` files do not. A candidate
counts only if it loads and maps the Han characters letters use; ``fc-match :lang=zh`` happily
answers DejaVu Sans on a machine without CJK fonts, so its answer is checked like any other.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from dunning.errors import ConfigError

__all__ = ["DEFAULT_FONT_PATHS", "INSTALL_HINT", "CjkFont", "find_cjk_font", "register_font"]

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
    "no CJK TrueType font found; lawyer letters would print blank Chinese text. Install one "
    "(Debian/Ubuntu: `apt-get install fonts-wqy-microhei`) or set font_path in the [letter] "
    "section of config/channels.toml to a TrueType .ttf/.ttc file (CFF fonts such as Noto CJK "
    "are not supported by reportlab)"
)
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


def find_cjk_font(candidates: Sequence[Path] | None = None) -> CjkFont:
    """The first usable CJK TrueType font among ``candidates``.

    ``None`` means the well-known system paths plus fontconfig's answers; an explicit sequence
    (files or folders) is searched alone, so tests can point at an empty folder.
    Raises ConfigError with installation advice when nothing usable is found.
    """
    if candidates is None:
        search: list[Path] = [*DEFAULT_FONT_PATHS, *_fontconfig_paths()]
    else:
        search = list(candidates)
    seen: set[Path] = set()
    for path in _expand(search):
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
            pdfmetrics.registerFont(
                TTFont(font.name, str(font.path), subfontIndex=font.subfont_index)
            )
        except (TTFError, OSError) as exc:
            raise ConfigError(f"cannot load CJK font {font.path}: {exc}") from exc
    return font.name
