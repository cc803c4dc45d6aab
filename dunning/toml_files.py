"""Reading the operator's TOML files (``config/*.toml``), with one way to fail.

Each file has one loader (``channels.toml``: :mod:`dunning.channels_toml`,
``strategy.toml``: :mod:`dunning.producers.strategy`, ``compliance.toml``:
:mod:`dunning.compliance.packs`, ``law_firms.toml``: :mod:`dunning.channels.letter.law_firms`),
and every loader reads through :func:`read_toml`, so a missing, unreadable or malformed file is
always a ConfigError that names the file and, for malformed TOML, the line and column.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from dunning.errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path: Path | str, *, missing_ok: bool = False) -> dict[str, Any]:
    """The parsed document at ``path``; ``{}`` when the file does not exist and ``missing_ok``.

    Raises ConfigError ``cannot read <path>: file not found`` (or the OS's reason), or
    ``<path>: not valid TOML: <what> (at line L, column C)``.
    """
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        if missing_ok:
            return {}
        raise ConfigError(f"cannot read {path}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8; say where the first bad byte is
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 at byte {exc.start}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
