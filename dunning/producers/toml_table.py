"""A TOML table being read: typed getters whose errors name the file, the table and the key.

Shared by the strategy's loaders (stages, variants, segments, scorecard), so every mistake reads
``config/strategy.toml: [segments #2] key 'balance': ...``.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar, cast

from dunning.errors import ConfigError
from dunning.producers.outcomes import STOP_KINDS, OutcomeKind

__all__ = ["MISSING", "Table"]

_T = TypeVar("_T")
MISSING: Any = object()


class Table:
    """One TOML table being read: typed getters that name file, table and key on error."""

    def __init__(self, data: object, source: str, table: str) -> None:
        self.source = source
        self.table = table
        if not isinstance(data, dict):
            self.fail(None, f"expected a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def fail(self, key: str | None, reason: str) -> NoReturn:
        where = f"{self.source}: [{self.table}]" + (f" key {key!r}" if key else "")
        raise ConfigError(f"{where}: {reason}")

    def get(self, key: str, kind: type[_T], default: Any = MISSING) -> _T:
        self.used.add(key)
        if key not in self.data:
            if default is MISSING:
                self.fail(key, "is required")
            return cast("_T", default)  # the caller's default, of its type
        value = self.data[key]
        # bool is an int in Python; a flag is never a count and a count never a flag.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self.get(key, object)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.fail(key, f"expected a positive number, got {value!r}")
        return float(value)

    def real(self, key: str, default: Any = MISSING) -> float | None:
        """Any number (int or float, never a bool); ``default`` when absent."""
        value = self.get(key, object, default)
        if value is None or value is default:
            return cast("float | None", value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"expected a number, got {value!r}")
        return float(value)

    def positive(self, key: str, default: Any = MISSING) -> int:
        value = self.get(key, int, default)
        if value < 1:
            self.fail(key, f"must be at least 1, got {value}")
        return value

    def optional_positive(self, key: str) -> int | None:
        return None if key not in self.data else self.positive(key)

    def choice(self, key: str, kind: Any) -> Any:
        value = self.get(key, str)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            return self.fail(key, f"{value!r} is not one of {allowed}")

    def stops(self, key: str, default: frozenset[OutcomeKind]) -> frozenset[OutcomeKind]:
        if key not in self.data:
            self.used.add(key)
            return default
        values = self.get(key, list)
        allowed = ", ".join(sorted(STOP_KINDS))
        out = set()
        for value in values:
            if value not in STOP_KINDS:
                self.fail(key, f"{value!r} is not one of {allowed}")
            out.add(OutcomeKind(value))
        return frozenset(out)

    def sub(self, key: str) -> Table | None:
        if key not in self.data:
            self.used.add(key)
            return None
        return Table(self.get(key, dict), self.source, f"{self.table}.{key}")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(None, f"unknown key(s) {', '.join(unknown)}")
