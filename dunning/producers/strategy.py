"""The collection strategy as data (``config/strategy.toml``): stages, steps, variants.

    [strategy]            name, expires_after_days, history_days (how far back outcomes are
                          read), stop_if, split_salt
    [stages.<stage>]      from_days, to_days (days past due; the last stage may be open-ended)
    [variants.<name>]     weight, stop_if (overrides the strategy's)
    [[variants.<name>.steps]]
                          id, stage, channel, template, days (day of the stage, 1 = its first day),
                          every_days (repeat after the last listed day), legal (lawyer letter or
                          legal wording: never once time-barred), if_no_delivered = {channel,
                          within_days}, if_unanswered_calls = {at_least, within_days}

Day ``d`` of a stage is ``days_past_due == from_days + d - 1``: day 1 of ``early`` (1-30) is one
day past due, day 1 of ``mid`` (31-60) is 31. A variant is chosen per account by a stable hash
(SHA-256 of salt and account id), so an account keeps its variant from run to run and host to
host. Every mistake in the file is a ConfigError naming the file, the table and the key.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from dunning.errors import ConfigError
from dunning.intents import Channel, Stage
from dunning.producers.outcomes import STOP_KINDS, OutcomeKind
from dunning.toml_files import read_toml

__all__ = [
    "NoDelivered",
    "StageBand",
    "Step",
    "Strategy",
    "UnansweredCalls",
    "Variant",
    "load_strategy",
    "parse_strategy",
]

_T = TypeVar("_T")
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class StageBand:
    stage: Stage
    from_days: int
    to_days: int | None  # None: open-ended

    def contains(self, days_past_due: int) -> bool:
        return days_past_due >= self.from_days and (
            self.to_days is None or days_past_due <= self.to_days
        )

    def day_of_stage(self, days_past_due: int) -> int:
        """1 on the stage's first day."""
        return days_past_due - self.from_days + 1


@dataclass(frozen=True, slots=True)
class NoDelivered:
    """Run the step only if nothing on ``channel`` was delivered in the last ``within_days``."""

    channel: Channel
    within_days: int


@dataclass(frozen=True, slots=True)
class UnansweredCalls:
    """Run the step only after ``at_least`` unanswered calls in the last ``within_days``."""

    at_least: int
    within_days: int


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    stage: Stage
    channel: Channel
    template: str
    days: tuple[int, ...]
    every_days: int | None = None
    legal: bool = False
    if_no_delivered: NoDelivered | None = None
    if_unanswered_calls: UnansweredCalls | None = None

    def due_on(self, day_of_stage: int) -> bool:
        """Whether the step fires on ``day_of_stage`` (listed, or a repeat after the last)."""
        if day_of_stage in self.days:
            return True
        last = max(self.days)
        return (
            self.every_days is not None
            and day_of_stage > last
            and (day_of_stage - last) % self.every_days == 0
        )

    @property
    def lookback_days(self) -> int:
        windows = [0]
        if self.if_no_delivered is not None:
            windows.append(self.if_no_delivered.within_days)
        if self.if_unanswered_calls is not None:
            windows.append(self.if_unanswered_calls.within_days)
        return max(windows)


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: float
    steps: tuple[Step, ...]
    stop_if: frozenset[OutcomeKind]


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    stages: tuple[StageBand, ...]
    variants: tuple[Variant, ...]
    expires_after_days: int = 1
    history_days: int = 90
    split_salt: str = ""

    def stage_for(self, days_past_due: int) -> StageBand | None:
        """The stage band holding ``days_past_due``; None outside every band."""
        for band in self.stages:
            if band.contains(days_past_due):
                return band
        return None

    def variant_for(self, account_id: str) -> Variant:
        """The account's variant by a stable hash; the split follows the weights."""
        key = f"{self.split_salt or self.name}\x1f{account_id}".encode()
        point = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        total = sum(v.weight for v in self.variants)
        edge = 0.0
        for variant in self.variants:
            edge += variant.weight / total
            if point < edge:
                return variant
        return self.variants[-1]  # float rounding at the top edge


# --- parsing ---------------------------------------------------------------------------------


class _Table:
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

    def get(self, key: str, kind: type[_T], default: Any = _MISSING) -> _T:
        self.used.add(key)
        if key not in self.data:
            if default is _MISSING:
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

    def positive(self, key: str, default: Any = _MISSING) -> int:
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

    def sub(self, key: str) -> _Table | None:
        if key not in self.data:
            self.used.add(key)
            return None
        return _Table(self.get(key, dict), self.source, f"{self.table}.{key}")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(None, f"unknown key(s) {', '.join(unknown)}")


def _stages(root: _Table) -> tuple[StageBand, ...]:
    table = root.sub("stages") or root.fail("stages", "is required")
    bands = []
    for name in table.data:
        band = _Table(table.get(name, dict), root.source, f"stages.{name}")
        try:
            stage = Stage(name)
        except ValueError:
            band.fail(None, f"{name!r} is not a stage ({', '.join(s.value for s in Stage)})")
        from_days = band.get("from_days", int)
        to_days = band.get("to_days", int, None)
        if to_days is not None and to_days < from_days:
            band.fail("to_days", f"{to_days} is before from_days {from_days}")
        band.finish()
        bands.append(StageBand(stage, from_days, to_days))
    table.finish()
    bands.sort(key=lambda b: b.from_days)
    for before, after in itertools.pairwise(bands):
        if before.to_days is None or before.to_days >= after.from_days:
            root.fail(
                "stages", f"{before.stage.value} overlaps {after.stage.value}; bands must not"
            )
    return tuple(bands)


def _step(data: object, source: str, table: str, stages: set[Stage]) -> Step:
    t = _Table(data, source, table)
    step_id = t.get("id", str)
    if not step_id.strip():
        t.fail("id", "must not be empty")
    stage = t.choice("stage", Stage)
    if stage not in stages:
        t.fail("stage", f"{stage.value!r} has no [stages.{stage.value}] band")
    days = t.get("days", list)
    if not days or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in days):
        t.fail("days", f"expected a non-empty list of days >= 1, got {days!r}")
    no_delivered = None
    if (sub := t.sub("if_no_delivered")) is not None:
        no_delivered = NoDelivered(sub.choice("channel", Channel), sub.positive("within_days"))
        sub.finish()
    unanswered = None
    if (sub := t.sub("if_unanswered_calls")) is not None:
        unanswered = UnansweredCalls(sub.positive("at_least"), sub.positive("within_days", 30))
        sub.finish()
    step = Step(
        id=step_id,
        stage=stage,
        channel=t.choice("channel", Channel),
        template=t.get("template", str),
        days=tuple(sorted(set(days))),
        every_days=t.optional_positive("every_days"),
        legal=t.get("legal", bool, False),
        if_no_delivered=no_delivered,
        if_unanswered_calls=unanswered,
    )
    t.finish()
    return step


def _variants(root: _Table, stages: set[Stage], stop_if: frozenset[OutcomeKind]) -> list[Variant]:
    table = root.sub("variants") or root.fail("variants", "is required")
    variants = []
    for name in table.data:
        v = _Table(table.get(name, dict), root.source, f"variants.{name}")
        steps_data = v.get("steps", list)
        steps = [
            _step(s, root.source, f"variants.{name}.steps #{i}", stages)
            for i, s in enumerate(steps_data, start=1)
        ]
        seen: set[str] = set()
        for step in steps:
            if step.id in seen:
                v.fail("steps", f"step id {step.id!r} appears twice")
            seen.add(step.id)
        variants.append(
            Variant(name, v.number("weight"), tuple(steps), v.stops("stop_if", stop_if))
        )
        v.finish()
    table.finish()
    if not variants:
        root.fail("variants", "needs at least one variant")
    return variants


def parse_strategy(data: Mapping[str, Any], source: str = "<strategy>") -> Strategy:
    """Build a Strategy from parsed TOML; raises ConfigError naming file, table and key."""
    root = _Table(dict(data), source, "")
    head = root.sub("strategy") or root.fail("strategy", "is required")
    name = head.get("name", str)
    expires = head.positive("expires_after_days", 1)
    history = head.positive("history_days", 90)
    stop_if = head.stops("stop_if", STOP_KINDS)
    salt = head.get("split_salt", str, "")
    head.finish()
    stages = _stages(root)
    variants = _variants(root, {b.stage for b in stages}, stop_if)
    root.finish()
    for variant in variants:
        for step in variant.steps:
            if step.lookback_days > history:
                head.fail(
                    "history_days",
                    f"{history} is shorter than step {step.id!r} of variant {variant.name!r} "
                    f"looks back ({step.lookback_days} days)",
                )
    return Strategy(name, stages, tuple(variants), expires, history, salt)


def load_strategy(path: str | Path) -> Strategy:
    """Read and validate a strategy TOML file."""
    return parse_strategy(read_toml(path), str(path))
