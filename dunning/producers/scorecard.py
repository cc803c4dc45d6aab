"""A points scorecard: bins of each characteristic map to points, scaled by points-to-double-odds.

The built-in card (``scorecard_builtin.toml`` beside this module) is for lenders without a model
of their own; its bins and log-odds were fitted offline on a reference book, and a lender can
ship its own card in the same format (``[scoring] file = "..."`` in config/strategy.toml).

    [scorecard]         name, base_score, base_odds (good:bad odds at base_score), pdo (points
                        to double the odds), intercept (log-odds of the reference account)
    [[characteristic]]  name (one of CHARACTERISTICS), reason (a code such as R01), text
                        (what the reason code says), missing (log-odds when unknown)
    [[characteristic.bins]]  from, to (inclusive; either open), log_odds

Scaling: ``factor = pdo / ln 2``, ``offset = base_score - factor * ln(base_odds)``, and a bin's
points are ``factor * log_odds``; the score is ``offset + factor * intercept`` plus the points.
Higher scores mean lower risk. The reason codes of a score are the characteristics that cost the
most points against the best bin of each (the usual adverse-action method), largest first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dunning.producers.segments import Range, refuse_protected
from dunning.producers.toml_table import Table
from dunning.toml_files import read_toml

__all__ = [
    "BUILTIN_SCORECARD",
    "CHARACTERISTICS",
    "Characteristic",
    "Score",
    "Scorecard",
    "load_scorecard",
    "parse_scorecard",
]

BUILTIN_SCORECARD = Path(__file__).with_name("scorecard_builtin.toml")
#: What a scorecard may look at (dunning/producers/evaluator.py computes them per account).
CHARACTERISTICS = frozenset(
    {
        "days_past_due",
        "balance",
        "paid_share",
        "first_payment_default",
        "broken_promises",
        "contact_rate",
    }
)


@dataclass(frozen=True, slots=True)
class Bin:
    bounds: Range
    log_odds: float


@dataclass(frozen=True, slots=True)
class Characteristic:
    name: str
    reason: str
    text: str
    bins: tuple[Bin, ...]
    missing: float
    _best: float = 0.0

    def log_odds(self, value: float | None) -> float:
        if value is None:
            return self.missing
        for bin_ in self.bins:
            if bin_.bounds.contains(value):
                return bin_.log_odds
        return self.missing

    @property
    def best(self) -> float:
        return max([b.log_odds for b in self.bins] + [self.missing])

    def __post_init__(self) -> None:
        # Read once per characteristic per account: computed here, not on every score.
        object.__setattr__(self, "_best", self.best)


@dataclass(frozen=True, slots=True)
class Score:
    value: int
    model: str
    reasons: tuple[str, ...]  # "R03 no payment since the first due date", worst first


@dataclass(frozen=True, slots=True)
class Scorecard:
    name: str
    base_score: float
    base_odds: float
    pdo: float
    intercept: float
    characteristics: tuple[Characteristic, ...]

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def points(self, log_odds: float) -> float:
        return self.factor * log_odds

    def score(self, values: Mapping[str, float | None], *, top: int = 3) -> Score:
        """The score of one account's characteristic values and its top reason codes."""
        factor = self.factor
        log_odds = self.intercept
        shortfalls: list[tuple[float, int, str]] = []
        for order, item in enumerate(self.characteristics):
            earned = item.log_odds(values.get(item.name))
            log_odds += earned
            lost = factor * (item._best - earned)
            if lost > 0.5:  # under a point is noise, not a reason
                shortfalls.append((-lost, order, f"{item.reason} {item.text}"))
        total = self.offset + factor * log_odds
        reasons = tuple(text for _, _, text in sorted(shortfalls)[:top])
        return Score(round(total), self.name, reasons)


def _bins(item: Table, index: int) -> tuple[Bin, ...]:
    bins = []
    for number, raw in enumerate(item.get("bins", list), start=1):
        table = Table(raw, item.source, f"{item.table}.bins #{number}")
        low, high = table.real("from", None), table.real("to", None)
        log_odds = table.real("log_odds")
        assert log_odds is not None  # required
        table.finish()
        bins.append(Bin(Range(low, high), float(log_odds)))
    if not bins:
        item.fail("bins", "needs at least one bin")
    ordered = sorted(bins, key=lambda b: -math.inf if b.bounds.low is None else b.bounds.low)
    for before, after in itertools.pairwise(ordered):
        if before.bounds.high is None or (
            after.bounds.low is None or before.bounds.high >= after.bounds.low
        ):
            item.fail("bins", f"bin {before.bounds.text()} overlaps bin {after.bounds.text()}")
    return tuple(bins)


def parse_scorecard(data: Mapping[str, Any], source: str = "<scorecard>") -> Scorecard:
    """Build a Scorecard; raises ConfigError naming file, table and key (a protected attribute
    as a characteristic included)."""
    root = Table(dict(data), source, "")
    head = root.sub("scorecard") or root.fail("scorecard", "is required")
    name = head.get("name", str)
    numbers = {key: head.number(key) for key in ("base_score", "base_odds", "pdo")}
    intercept = head.real("intercept", 0.0) or 0.0
    head.finish()
    items = []
    seen: set[str] = set()
    for index, raw in enumerate(root.get("characteristic", list), start=1):
        item = Table(raw, source, f"characteristic #{index}")
        char_name = item.get("name", str)
        refuse_protected(item, [char_name])
        if char_name not in CHARACTERISTICS:
            item.fail("name", f"{char_name!r} is not one of {', '.join(sorted(CHARACTERISTICS))}")
        if char_name in seen:
            item.fail("name", f"{char_name!r} appears twice")
        seen.add(char_name)
        missing = item.real("missing", 0.0) or 0.0
        items.append(
            Characteristic(
                char_name,
                item.get("reason", str),
                item.get("text", str),
                _bins(item, index),
                float(missing),
            )
        )
        item.finish()
    root.finish()
    if not items:
        root.fail("characteristic", "needs at least one characteristic")
    return Scorecard(
        name,
        numbers["base_score"],
        numbers["base_odds"],
        numbers["pdo"],
        float(intercept),
        tuple(items),
    )


def load_scorecard(path: str | Path = BUILTIN_SCORECARD) -> Scorecard:
    """Read a scorecard file (default: the built-in card)."""
    return parse_scorecard(read_toml(path), str(path))
