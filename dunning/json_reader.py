"""Strict reading of one JSON object: typed fields, every field accounted for.

A :class:`JsonReader` pulls typed fields out of a decoded JSON object and remembers which were
read, so :meth:`JsonReader.finish` can refuse unknown fields; every refusal is a
:class:`~dunning.errors.DecodeError` naming the dotted field. Used by the message contract
(dunning/intents.py).
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any, TypeVar

from dunning.errors import DecodeError

__all__ = ["JsonReader", "enum_value"]

_E = TypeVar("_E", bound=enum.StrEnum)


class JsonReader:
    """Pulls typed fields out of one JSON object, remembering which were read."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise DecodeError(f"expected an object, got {type(data).__name__}", field=path or None)
        self.data: dict[str, Any] = data
        self.path = path
        self.seen: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, *, optional: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if optional:
                return None
            raise DecodeError("missing required field", field=self._name(key))
        return self.data[key]

    def text(self, key: str, *, optional: bool = False, pattern: re.Pattern[str] | None = None,
             what: str = "", pii: bool = False) -> str | None:  # fmt: skip
        value = self.raw(key, optional=optional)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise DecodeError(
                f"expected a string, got {type(value).__name__}", field=self._name(key)
            )
        if not value.strip():
            raise DecodeError("must not be empty", field=self._name(key))
        if pattern is not None and not pattern.match(value):
            # A phone number or email is personal data: dead-letter reasons never quote it.
            shown = "the value" if pii else repr(value)
            raise DecodeError(f"{shown} is not {what or 'valid'}", field=self._name(key))
        return value

    def req(self, key: str, **kwargs: Any) -> str:
        value = self.text(key, **kwargs)
        assert value is not None  # text() raises for a missing required field
        return value

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(
                f"expected an integer, got {type(value).__name__}", field=self._name(key)
            )
        return value

    def instant(self, key: str, *, optional: bool = False) -> datetime | None:
        value = self.text(key, optional=optional)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise DecodeError(
                f"{value!r} is not an ISO 8601 datetime", field=self._name(key)
            ) from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise DecodeError(
                f"{value!r} is a naive datetime; an offset or Z is required", field=self._name(key)
            )
        return parsed

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise DecodeError(f"unknown field(s) {', '.join(unknown)}", field=self.path or None)


def enum_value(cls: type[_E], value: str, name: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise DecodeError(f"{value!r} is not one of {allowed}", field=name) from None
