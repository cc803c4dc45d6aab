"""The collection strategy as data (``config/strategy.toml``): stages, steps, variants.

    [strategy]            name, expires_after_days, history_days (how far back outcomes are
                          read), stop_if, split_salt
    [stages.<stage>]      from_days, to_days (days past due; the last stage may be open-ended)
    [variants.<name>]     weight, stop_if (overrides the strategy's)
    [[variants.<name>.steps]]
                          id, stage, channel, template, days (day of the stage, 1 = its first day),
                          every_days (repeat after the last listed day), legal (lawyer letter or
                          legal wording: never once time-barred), if_no_delivered = {channel,
                          within_days}, if_unanswered_calls = {at_least, within_days},
                          segments (the risk segments it runs for; default every segment)
    [followups.broken_promise]
                          channel, template: the step sent the day after a promise to pay
                          was due and not kept (its id is ``broken_promise``)
    [scoring]             model = "builtin" (the built-in scorecard for accounts without a
                          ``score``) or file = "scorecard.toml" (beside this file)
    [score_bands.*], [[segments]]
                          risk segments, first match wins: dunning/producers/segments.py

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
from typing import Any

from dunning.intents import Channel, Stage
from dunning.producers.outcomes import STOP_KINDS, OutcomeKind
from dunning.producers.scorecard import BUILTIN_SCORECARD, Scorecard, load_scorecard
from dunning.producers.segments import (
    DEFAULT_SEGMENT,
    ScoreBand,
    Segment,
    parse_score_bands,
    parse_segments,
)
from dunning.producers.toml_table import Table
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
    segments: frozenset[str] | None = None  # None: every segment

    def runs_for(self, segment: str) -> bool:
        return self.segments is None or segment in self.segments

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
    segments: tuple[Segment, ...] = ()
    score_bands: tuple[ScoreBand, ...] = ()
    scorecard: Scorecard | None = None
    contact_rate_days: int = 30
    broken_promise: tuple[Channel, str] | None = None  # the follow-up's channel and template

    def stage_for(self, days_past_due: int) -> StageBand | None:
        """The stage band holding ``days_past_due``; None outside every band."""
        for band in self.stages:
            if band.contains(days_past_due):
                return band
        return None

    def variant_for(self, account_id: str, weights: Mapping[str, float] | None = None) -> Variant:
        """The account's variant by a stable hash; the split follows the weights (a segment's
        own ``weights`` when given, a variant it leaves out getting none)."""
        key = f"{self.split_salt or self.name}\x1f{account_id}".encode()
        point = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
        if weights is None:
            total = sum(v.weight for v in self.variants)
            edge = 0.0
            for variant in self.variants:
                edge += variant.weight / total
                if point < edge:
                    return variant
            return self.variants[-1]  # float rounding at the top edge
        share = weights
        candidates = [v for v in self.variants if share.get(v.name, 0) > 0]
        total = sum(share[v.name] for v in candidates)
        edge = 0.0
        for variant in candidates:
            edge += share[variant.name] / total
            if point < edge:
                return variant
        return candidates[-1]  # float rounding at the top edge

    def segment_names(self) -> frozenset[str]:
        return frozenset({DEFAULT_SEGMENT, *(s.name for s in self.segments)})

    def score_band_for(self, score: int | None) -> str:
        """The name of the band holding ``score``; empty without a score or a band."""
        for band in self.score_bands:
            if band.bounds.contains(score):
                return band.name
        return ""


# --- parsing ---------------------------------------------------------------------------------


def _stages(root: Table) -> tuple[StageBand, ...]:
    table = root.sub("stages") or root.fail("stages", "is required")
    bands = []
    for name in table.data:
        band = Table(table.get(name, dict), root.source, f"stages.{name}")
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


def _step_segments(t: Table) -> frozenset[str] | None:
    if "segments" not in t.data:
        t.used.add("segments")
        return None
    names = t.get("segments", list)
    if not names or not all(isinstance(n, str) and n for n in names):
        t.fail("segments", f"expected a non-empty list of segment names, got {names!r}")
    return frozenset(names)


def _step(data: object, source: str, table: str, stages: set[Stage]) -> Step:
    t = Table(data, source, table)
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
        segments=_step_segments(t),
    )
    t.finish()
    return step


def _variants(root: Table, stages: set[Stage], stop_if: frozenset[OutcomeKind]) -> list[Variant]:
    table = root.sub("variants") or root.fail("variants", "is required")
    variants = []
    for name in table.data:
        v = Table(table.get(name, dict), root.source, f"variants.{name}")
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
    root = Table(dict(data), source, "")
    head = root.sub("strategy") or root.fail("strategy", "is required")
    name = head.get("name", str)
    expires = head.positive("expires_after_days", 1)
    history = head.positive("history_days", 90)
    stop_if = head.stops("stop_if", STOP_KINDS)
    salt = head.get("split_salt", str, "")
    contact_rate_days = head.positive("contact_rate_days", 30)
    head.finish()
    stages = _stages(root)
    variants = _variants(root, {b.stage for b in stages}, stop_if)
    bands = parse_score_bands(root)
    segments = parse_segments(root, bands, {v.name for v in variants})
    scorecard = _scoring(root)
    broken_promise = _followup(root)
    root.finish()
    _check_step_segments(root, variants, {DEFAULT_SEGMENT, *(s.name for s in segments)})
    for variant in variants:
        for step in variant.steps:
            if step.lookback_days > history:
                head.fail(
                    "history_days",
                    f"{history} is shorter than step {step.id!r} of variant {variant.name!r} "
                    f"looks back ({step.lookback_days} days)",
                )
    return Strategy(
        name, stages, tuple(variants), expires, history, salt, segments, bands, scorecard,
        contact_rate_days, broken_promise,
    )  # fmt: skip


def _followup(root: Table) -> tuple[Channel, str] | None:
    table = root.sub("followups")
    if table is None:
        return None
    step = table.sub("broken_promise")
    table.finish()
    if step is None:
        return None
    followup = (step.choice("channel", Channel), step.get("template", str))
    step.finish()
    return followup


def _scoring(root: Table) -> Scorecard | None:
    table = root.sub("scoring")
    if table is None:
        return None
    model = table.get("model", str, "")
    file = table.get("file", str, "")
    table.finish()
    if bool(model) == bool(file):
        table.fail(None, 'set one of model = "builtin" or file = "scorecard.toml"')
    if model and model != "builtin":
        table.fail("model", f"{model!r} is not a built-in model (builtin)")
    if file:
        path = Path(root.source).parent / file
        if not path.is_file():
            table.fail("file", f"{str(path)!r} does not exist")
        return load_scorecard(path)
    return load_scorecard(BUILTIN_SCORECARD)


def _check_step_segments(root: Table, variants: list[Variant], known: set[str]) -> None:
    for variant in variants:
        for index, step in enumerate(variant.steps, start=1):
            unknown = sorted((step.segments or frozenset()) - known)
            if unknown:
                where = Table({}, root.source, f"variants.{variant.name}.steps #{index}")
                where.fail(
                    "segments",
                    f"step {step.id!r} names unknown segment(s) {', '.join(unknown)} "
                    f"(known: {', '.join(sorted(known))})",
                )


def load_strategy(path: str | Path) -> Strategy:
    """Read and validate a strategy TOML file."""
    return parse_strategy(read_toml(path), str(path))
