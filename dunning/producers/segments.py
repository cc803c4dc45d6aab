"""Risk segments: an ordered list of rules over what is known of an account; the first match wins.

    [score_bands.<name>]  from, to (inclusive; either may be left out; bands must not overlap)
    [[segments]]          name, and any of:
                          days_past_due = {from, to}   balance = {from, to} (amount due)
                          score = {from, to}           score_band = ["low_risk", ...]
                          first_payment_default = true (nothing paid since the first due date)
                          broken_promises = {from, to} (promises broken in the last 90 days)
                          contact_rate = {from, to}    (share of contacts that got through,
                                                        0..1, over the strategy's
                                                        contact_rate_days)
                          segment = ["vip", ...]       (the book's manual ``segment`` column)
                          variants = {champion = 70, challenger = 30} (weights in the segment)

A step names the segments it runs for (``segments = [...]``); a step without the key runs for
every segment. An account matching no rule is in the segment ``default``. A rule that an earlier
rule covers entirely can never match and is refused, as is a rule on a protected attribute.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from dunning.producers.toml_table import Table

__all__ = [
    "DEFAULT_SEGMENT",
    "PROTECTED_ATTRIBUTES",
    "Profile",
    "Range",
    "ScoreBand",
    "Segment",
    "parse_score_bands",
    "parse_segments",
    "refuse_protected",
]

DEFAULT_SEGMENT = "default"
#: Attributes no rule or scorecard may use: fair-treatment rules and PIPL Art 24 (automated
#: decisions must be fair and explainable) forbid deciding on them; age is forbidden in the
#: jurisdictions dunning serves for collection decisions, so it is refused everywhere.
PROTECTED_ATTRIBUTES = frozenset(
    {
        "sex",
        "gender",
        "ethnicity",
        "race",
        "religion",
        "national_origin",
        "nationality",
        "marital_status",
        "age",
        "year_of_birth",
        "date_of_birth",
    }
)
_RANGES = ("days_past_due", "balance", "score", "broken_promises", "contact_rate")
_SETS = ("score_band", "segment")


def refuse_protected(table: Table, keys: object) -> None:
    """Fail naming the first protected attribute among ``keys``."""
    for key in keys if isinstance(keys, list | tuple | dict | set) else ():
        if isinstance(key, str) and key.lower() in PROTECTED_ATTRIBUTES:
            table.fail(
                key,
                "is a protected attribute: no segment rule or scorecard may decide on it "
                "(fair treatment; automated decisions must be fair and explainable)",
            )


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive bounds; None is open on that side."""

    low: float | None = None
    high: float | None = None

    def contains(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def covers(self, other: Range) -> bool:
        low_ok = self.low is None or (other.low is not None and other.low >= self.low)
        high_ok = self.high is None or (other.high is not None and other.high <= self.high)
        return low_ok and high_ok

    def text(self) -> str:
        low = "" if self.low is None else f"{self.low:g}"
        high = "" if self.high is None else f"{self.high:g}"
        return f"{low}..{high}"


@dataclass(frozen=True, slots=True)
class ScoreBand:
    name: str
    bounds: Range


@dataclass(frozen=True, slots=True)
class Profile:
    """What the segment rules look at for one account on one day."""

    days_past_due: int
    balance: Decimal
    score: int | None
    score_band: str
    first_payment_default: bool
    broken_promises: int
    contact_rate: float | None
    segment: str

    def value(self, key: str) -> float | None:
        raw = getattr(self, key)
        return None if raw is None else float(raw)


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    ranges: tuple[tuple[str, Range], ...] = ()
    sets: tuple[tuple[str, frozenset[str]], ...] = ()
    first_payment_default: bool | None = None
    weights: tuple[tuple[str, float], ...] = ()

    def matches(self, profile: Profile) -> bool:
        if (
            self.first_payment_default is not None
            and profile.first_payment_default is not self.first_payment_default
        ):
            return False
        if not all(bounds.contains(profile.value(key)) for key, bounds in self.ranges):
            return False
        return all(getattr(profile, key) in allowed for key, allowed in self.sets)

    def covers(self, other: Segment) -> bool:
        """True when every account ``other`` matches is matched by this rule too."""
        if self.first_payment_default is not None and (
            other.first_payment_default is not self.first_payment_default
        ):
            return False
        theirs = dict(other.ranges)
        if not all(key in theirs and mine.covers(theirs[key]) for key, mine in self.ranges):
            return False
        their_sets = dict(other.sets)
        return all(key in their_sets and their_sets[key] <= mine for key, mine in self.sets)

    def rule(self) -> str:
        """The rule as one line, for --explain."""
        parts = [f"{key} {bounds.text()}" for key, bounds in self.ranges]
        parts += [f"{key} in [{', '.join(sorted(allowed))}]" for key, allowed in self.sets]
        if self.first_payment_default is not None:
            parts.append(f"first_payment_default = {str(self.first_payment_default).lower()}")
        return ", ".join(parts) or "every account"

    @property
    def needs_history(self) -> bool:
        return any(key in ("broken_promises", "contact_rate") for key, _ in self.ranges)


def _range(table: Table, key: str) -> Range:
    sub = table.sub(key)
    assert sub is not None  # only called for present keys
    bounds = [sub.real("from", None), sub.real("to", None)]
    sub.finish()
    low, high = bounds
    if low is not None and high is not None and low > high:
        sub.fail("to", f"{high:g} is below from {low:g}: no account can match")
    if key == "contact_rate" and any(b is not None and not 0 <= b <= 1 for b in bounds):
        sub.fail(None, "a contact rate is a share between 0 and 1")
    return Range(low, high)


def parse_score_bands(root: Table) -> tuple[ScoreBand, ...]:
    """``[score_bands.<name>]`` tables; bands that overlap are refused."""
    table = root.sub("score_bands")
    if table is None:
        return ()
    bands = []
    for name in table.data:
        band = Table(table.get(name, dict), root.source, f"score_bands.{name}")
        low, high = band.get("from", int, None), band.get("to", int, None)
        if low is not None and high is not None and low > high:
            band.fail("to", f"{high} is below from {low}")
        band.finish()
        bands.append(ScoreBand(name, Range(low, high)))
    table.finish()
    ordered = sorted(bands, key=lambda b: -1e18 if b.bounds.low is None else b.bounds.low)
    for before, after in itertools.pairwise(ordered):
        if before.bounds.high is None or (
            after.bounds.low is None or before.bounds.high >= after.bounds.low
        ):
            root.fail("score_bands", f"{before.name} overlaps {after.name}; bands must not")
    return tuple(bands)


def _segment(table: Table, bands: set[str], variants: set[str]) -> Segment:
    refuse_protected(table, list(table.data))
    name = table.get("name", str)
    if not name.strip() or name == DEFAULT_SEGMENT:
        table.fail("name", f"must be a non-empty name other than {DEFAULT_SEGMENT!r}")
    ranges = tuple((key, _range(table, key)) for key in _RANGES if key in table.data)
    sets = []
    for key in _SETS:
        if key in table.data:
            values = table.get(key, list)
            if not values or not all(isinstance(v, str) and v for v in values):
                table.fail(key, f"expected a non-empty list of names, got {values!r}")
            if key == "score_band":
                refuse = sorted(set(values) - bands)
                if refuse:
                    table.fail(key, f"unknown score band(s) {', '.join(refuse)} ([score_bands])")
            sets.append((key, frozenset(values)))
    weights: list[tuple[str, float]] = []
    if (sub := table.sub("variants")) is not None:
        for variant in sub.data:
            if variant not in variants:
                sub.fail(variant, f"is not a variant ({', '.join(sorted(variants))})")
            value = sub.get(variant, object)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                sub.fail(variant, f"expected a weight >= 0, got {value!r}")
            weights.append((variant, float(value)))
        if not any(w > 0 for _, w in weights):
            sub.fail(None, "needs at least one weight above 0")
        sub.finish()
    segment = Segment(
        name,
        ranges,
        tuple(sets),
        table.get("first_payment_default", bool, None),
        tuple(weights),
    )
    table.finish()
    return segment


def parse_segments(
    root: Table, bands: tuple[ScoreBand, ...], variants: set[str]
) -> tuple[Segment, ...]:
    """The ``[[segments]]`` list in order; a rule an earlier one covers is refused."""
    if "segments" not in root.data:
        root.used.add("segments")
        return ()
    items = root.get("segments", list)
    segments: list[Segment] = []
    names = {b.name for b in bands}
    for index, item in enumerate(items, start=1):
        table = Table(item, root.source, f"segments #{index}")
        segment = _segment(table, names, variants)
        for earlier in segments:
            if segment.name == earlier.name:
                table.fail("name", f"{segment.name!r} appears twice")
            if earlier.covers(segment):
                table.fail(
                    "name",
                    f"segment {segment.name!r} is unreachable: every account it matches is "
                    f"matched first by {earlier.name!r} ({earlier.rule()})",
                )
        segments.append(segment)
    return tuple(segments)


def weights_of(segment: Segment | None) -> Mapping[str, float] | None:
    """The segment's own variant weights, or None to use the variants' weights."""
    return dict(segment.weights) if segment is not None and segment.weights else None
