"""One table of ``config/compliance.toml`` being read: typed getters whose errors name the
file and the dotted key (``config/compliance.toml: pack.CN.window.start: ...``).

Shared by the pack loader (dunning/compliance/packs.py) and the sections parsed beside it
(visit rules).
"""

from __future__ import annotations

from datetime import time
from typing import Any

from dunning.errors import ConfigError
from dunning.intents import Channel
from dunning.records import DialOutcome

__all__ = ["PackTable"]


class PackTable:
    """Reads typed keys from one TOML table; errors name the file and the dotted key."""

    def __init__(self, data: object, where: str, file: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: {where} must be a table")
        self.data: dict[str, Any] = data
        self.where = where
        self.file = file

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.where}.{key}: {why}")

    def get(self, key: str, kind: type, *, default: Any = ..., what: str = "") -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, f"expected {what or kind.__name__}, got {value!r}")
        return value

    def names(self, key: str) -> frozenset[str] | None:
        value = self.get(key, list, default=None, what="a list of names")
        if value is None:
            return None
        if not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "expected a list of non-empty strings")
        return frozenset(value)

    def channels(self, key: str) -> frozenset[Channel]:
        raw = self.names(key)
        if not raw:
            raise self.fail(key, "expected a non-empty list of channels")
        try:
            return frozenset(Channel(v) for v in raw)
        except ValueError as exc:
            allowed = ", ".join(c.value for c in Channel)
            raise self.fail(key, f"{exc}; channels are {allowed}") from exc

    def outcomes(self, key: str) -> frozenset[DialOutcome] | None:
        raw = self.names(key)
        if raw is None:
            return None
        try:
            return frozenset(DialOutcome(v) for v in raw)
        except ValueError as exc:
            allowed = ", ".join(o.value for o in DialOutcome)
            raise self.fail(key, f"{exc}; outcomes are {allowed}") from exc

    def clock_time(self, key: str) -> time:
        raw = self.get(key, str, what='a time like "08:00"')
        try:
            return time.fromisoformat(raw)
        except ValueError as exc:
            raise self.fail(key, f'{raw!r} is not a time like "08:00"') from exc
