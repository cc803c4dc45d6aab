"""Scriptable behaviour of the Twilio stand-in, deterministic given a seed.

Tests and load tests set these through :attr:`TwilioStandIn.behaviour` or ``POST
/_sandbox/script`` (JSON with the same field names). Every random choice draws from one
``random.Random(seed)`` in request order, so the same seed and the same request sequence give
the same responses.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DEFAULT_FAILURE_NUMBERS", "FAILED_AT_CREATE", "Decision", "StandInBehaviour"]

#: To-number -> Twilio error code, after Twilio's own magic test numbers.
DEFAULT_FAILURE_NUMBERS: dict[str, int] = {
    "+15005550001": 21211,  # invalid number
    "+15005550002": 21614,  # not a mobile number (cannot receive SMS)
    "+15005550009": 21610,  # recipient replied STOP
}

#: Call outcomes for To-numbers: CallStatus at the end, and AnsweredBy when answered.
DEFAULT_CALL_OUTCOMES: dict[str, tuple[str, str | None]] = {
    "+15005550010": ("completed", "machine_end_beep"),
    "+15005550011": ("busy", None),
    "+15005550012": ("no-answer", None),
    "+15005550013": ("failed", None),
}


#: Statuses a create may be answered with that mean the message or call never went out.
FAILED_AT_CREATE = frozenset({"failed", "canceled", "undelivered"})

Decision = Literal["ok", "429", "500"]


@dataclass
class StandInBehaviour:
    """What the stand-in does beyond the happy path. Rates are fractions in [0, 1]."""

    seed: int = 0
    failure_numbers: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FAILURE_NUMBERS))
    call_outcomes: dict[str, tuple[str, str | None]] = field(
        default_factory=lambda: dict(DEFAULT_CALL_OUTCOMES)
    )
    rate_429: float = 0.0
    retry_after_s: int = 1
    rate_500: float = 0.0
    response_delay_ms: int = 0
    delivery_delay_ms: int = 0
    drop_callback_rate: float = 0.0
    undelivered_numbers: dict[str, int] = field(default_factory=dict)  # To -> ErrorCode (30xxx)
    # To -> (status, ErrorCode or None): the create itself is answered 201 with this status
    # ("failed", "canceled", "undelivered"), as Twilio does for a message it will not send.
    create_statuses: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def decide(self) -> Decision:
        """Draw the fate of one create request (consumes two draws, always)."""
        first, second = self._rng.random(), self._rng.random()
        if first < self.rate_429:
            return "429"
        if second < self.rate_500:
            return "500"
        return "ok"

    def drop_callback(self) -> bool:
        return self._rng.random() < self.drop_callback_rate

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON script; unknown keys raise ValueError naming them."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown behaviour field(s): {', '.join(unknown)}")
        for key, raw in changes.items():
            # JSON has no tuples: outcomes arrive as two-element lists.
            value: Any = raw
            if key in ("call_outcomes", "create_statuses"):
                value = {k: (v[0], v[1]) for k, v in raw.items()}
            if key == "create_statuses" and (
                bad := sorted({v[0] for v in value.values()} - FAILED_AT_CREATE)
            ):
                raise ValueError(f"create_statuses: {', '.join(bad)} is not failed, canceled "
                                 "or undelivered")  # fmt: skip
            if key == "seed":
                self.reseed(int(value))
            else:
                setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
