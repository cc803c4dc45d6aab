"""Rule packs: the contact rules of one jurisdiction and version, loaded from compliance.toml.

A pack holds data only (window, caps, lists of template names); the mechanisms live in
windows.py, caps.py and suppressions.py. Which messages carry legal wording is not listed here:
it is read from the marks of the templates beside the pack file (``templates/`` next to
compliance.toml, see :func:`dunning.templates.legal_marked`); a pack's optional
``legal_wording_templates`` adds names to those. A pack may ``extends`` another jurisdiction (US-MA
extends US): it inherits everything it does not set, and its caps are added to the parent's (a cap
with the same id replaces the parent's). :meth:`PackSet.select` picks the version in force.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

from dunning.clock import utc
from dunning.compliance.pack_table import PackTable
from dunning.compliance.visit_rules import VisitRules, parse_visit_rules
from dunning.intents import Channel
from dunning.records import DialOutcome
from dunning.templates import legal_marked
from dunning.toml_files import read_toml

__all__ = [
    "CapRule",
    "CreditBureauGate",
    "FurnishingRules",
    "Pack",
    "PackSet",
    "ValidationGate",
    "Window",
    "load_packs",
]

SCHEMA = "dunning.compliance/1"
CapKind = Literal["count", "cooldown"]
CapWindow = Literal["rolling_days", "calendar_day"]
CapKey = Literal["debt", "person", "phone"]


@dataclass(frozen=True, slots=True)
class Window:
    """Contact allowed when ``start <= local time < end`` (no window crosses midnight).

    ``channels`` are the channels the window governs: those that reach the person at the
    moment they are sent. A letter is delivered by the post at no time the sender picks, so the
    packs leave ``letter`` out; a window that names no channels governs all of them.
    """

    rule_id: str
    start: time
    end: time
    source: str
    channels: frozenset[Channel] = frozenset(Channel)

    def governs(self, channel: Channel) -> bool:
        return channel in self.channels


@dataclass(frozen=True, slots=True)
class CapRule:
    """One frequency cap or cooldown; see the header of config/compliance.toml."""

    id: str
    kind: CapKind
    channels: frozenset[Channel]
    window: CapWindow
    days: int
    key: CapKey
    limit: int
    source: str
    count_outcomes: frozenset[DialOutcome] | None = None
    exclude_outcomes: frozenset[DialOutcome] = frozenset()
    trigger_outcomes: frozenset[DialOutcome] = frozenset()
    #: Channels whose attempts count (or trigger) but which this cap does not gate: a
    #: conversation at the door counts toward the limits on calls (docs/visits.md).
    also_count: frozenset[Channel] = frozenset()


@dataclass(frozen=True, slots=True)
class FurnishingRules:
    """What the bureau step does for each standing flag, and the first-party notice grace.

    ``actions`` maps a suppression reason (``dispute``, ``cease``, ``bankrupt``, ``deceased``,
    ``paid``, ...) to ``report``, ``report_xb`` (report with compliance condition XB) or
    ``exclude`` (refuse with rule ``<jurisdiction>.bureau.exclude.<reason>``).
    """

    actions: tuple[tuple[str, str], ...]  # (reason, action), in the order of the file
    source: str
    #: First-party furnishers may send the notice this many days after the first negative
    #: furnishing (FCRA 623(a)(7)); 0: the notice must come first.
    notice_after_days: int = 0

    def action(self, reason: str) -> str:
        """The action for a standing ``reason``; ``report`` when the pack names none."""
        return dict(self.actions).get(reason, "report")


FURNISHING_ACTIONS = frozenset({"report", "report_xb", "exclude"})


@dataclass(frozen=True, slots=True)
class CreditBureauGate:
    """Credit-bureau steps need a logged prior notice at least ``notice_min_age_days`` old."""

    rule_id: str
    templates: frozenset[str]
    notice_templates: frozenset[str]
    notice_channels: frozenset[Channel]
    notice_min_age_days: int
    conversation_counts: bool
    source: str
    furnishing: FurnishingRules | None = None  # None: the bureau step reports nothing


@dataclass(frozen=True, slots=True)
class ValidationGate:
    """A collector in ``collector_roles`` sends a ``templates`` notice before any other contact
    about the debt; the period ends ``period_days`` after receipt, assumed
    ``receipt_business_days`` business days after sending (dunning/compliance/validation.py)."""

    rule_id: str
    templates: frozenset[str]
    collector_roles: frozenset[str]
    receipt_business_days: int
    period_days: int
    source: str


@dataclass(frozen=True, slots=True)
class Pack:
    """The rules in force for one jurisdiction (already merged with its parent when resolved)."""

    jurisdiction: str
    version: str
    effective_from: date
    window: Window | None
    caps: tuple[CapRule, ...] = ()
    permitted_after_cease: frozenset[str] | None = None
    lawyer_letter_templates: frozenset[str] | None = None
    legal_wording_templates: frozenset[str] | None = None
    credit_bureau: CreditBureauGate | None = None
    extends: str | None = None
    validation: ValidationGate | None = None
    #: the rule a dispute hold is recorded under (US 1006.38, CN objections), and its source
    dispute_rule_id: str | None = None
    dispute_source: str | None = None
    #: (locale, channel, name) of the templates marked as legal wording
    legal_marked: frozenset[tuple[str, str, str]] = frozenset()
    #: [pack.visit]: the rules of a field visit (None: the pack allows no visits)
    visit: VisitRules | None = None


@dataclass(frozen=True, slots=True)
class PackSet:
    """Every version of every pack; :meth:`select` resolves the one in force at an instant."""

    packs: tuple[Pack, ...]
    source: str = ""

    def jurisdictions(self) -> list[str]:
        return sorted({p.jurisdiction for p in self.packs})

    def select(
        self, jurisdiction: str, now: datetime, _seen: frozenset[str] = frozenset()
    ) -> Pack | None:
        """The merged pack for ``jurisdiction`` in force on ``now``'s UTC day, or None."""
        if jurisdiction in _seen:
            return None  # an extends cycle: no pack rather than a guess
        day = utc(now).date()
        candidates = [
            p for p in self.packs if p.jurisdiction == jurisdiction and p.effective_from <= day
        ]
        if not candidates:
            return None
        own = max(candidates, key=lambda p: p.effective_from)
        if own.extends is None:
            return own
        parent = self.select(own.extends, now, _seen | {jurisdiction})
        if parent is None:
            return None  # the parent is not in force yet: fail closed
        return _merge(parent, own)


def _merge(parent: Pack, child: Pack) -> Pack:
    child_ids = {c.id for c in child.caps}
    caps = tuple(c for c in parent.caps if c.id not in child_ids) + child.caps
    return replace(
        child,
        version=f"{child.version}+{parent.version}",
        window=child.window or parent.window,
        caps=caps,
        permitted_after_cease=_first(child.permitted_after_cease, parent.permitted_after_cease),
        lawyer_letter_templates=_first(
            child.lawyer_letter_templates, parent.lawyer_letter_templates
        ),
        legal_wording_templates=_first(
            child.legal_wording_templates, parent.legal_wording_templates
        ),
        credit_bureau=child.credit_bureau or parent.credit_bureau,
        visit=child.visit or parent.visit,
        extends=None,
        validation=child.validation or parent.validation,
        dispute_rule_id=child.dispute_rule_id or parent.dispute_rule_id,
        dispute_source=child.dispute_source or parent.dispute_source,
    )


def _first(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    return a if a is not None else b


# --- loading ------------------------------------------------------------------------------------


def _window(t: PackTable) -> Window:
    window = Window(
        rule_id=t.get("rule_id", str),
        start=t.clock_time("start"),
        end=t.clock_time("end"),
        source=t.get("source", str),
        channels=t.channels("channels") if "channels" in t.data else frozenset(Channel),
    )
    if window.start >= window.end:
        raise t.fail("end", "must be later than start (windows do not cross midnight)")
    return window


def _cap(t: PackTable) -> CapRule:
    kind = t.get("kind", str, default="count")
    if kind not in ("count", "cooldown"):
        raise t.fail("kind", f"{kind!r} is not count or cooldown")
    key = t.get("key", str)
    if key not in ("debt", "person", "phone"):
        raise t.fail("key", f"{key!r} is not debt, person or phone")
    window = t.get("window", str, default="rolling_days")
    if window not in ("rolling_days", "calendar_day"):
        raise t.fail("window", f"{window!r} is not rolling_days or calendar_day")
    days = t.get("days", int, default=1)
    if days < 1:
        raise t.fail("days", "must be at least 1")
    limit = t.get("limit", int, default=0 if kind == "cooldown" else ...)
    if kind == "count" and limit < 1:
        raise t.fail("limit", "must be at least 1 (a channel that is never allowed is not a cap)")
    triggers = t.outcomes("trigger_outcomes") or frozenset()
    if kind == "cooldown" and not triggers:
        raise t.fail("trigger_outcomes", "a cooldown needs at least one trigger outcome")
    return CapRule(
        id=t.get("id", str),
        kind=kind,
        channels=t.channels("channels"),
        window=window,
        days=1 if window == "calendar_day" else days,
        key=key,
        limit=limit,
        source=t.get("source", str),
        count_outcomes=t.outcomes("count_outcomes"),
        exclude_outcomes=t.outcomes("exclude_outcomes") or frozenset(),
        trigger_outcomes=triggers,
        also_count=t.channels("also_count") if "also_count" in t.data else frozenset(),
    )


def _credit_bureau(t: PackTable) -> CreditBureauGate:
    age = t.get("notice_min_age_days", int)
    if age < 0:
        raise t.fail("notice_min_age_days", "must not be negative")
    return CreditBureauGate(
        rule_id=t.get("rule_id", str),
        templates=t.names("templates") or frozenset(),
        notice_templates=t.names("notice_templates") or frozenset(),
        notice_channels=t.channels("notice_channels"),
        notice_min_age_days=age,
        conversation_counts=t.get("conversation_counts", bool, default=False),
        source=t.get("source", str),
        furnishing=_furnishing(t),
    )


def _validation(t: PackTable) -> ValidationGate:
    receipt, period = t.get("receipt_business_days", int), t.get("period_days", int)
    if receipt < 0 or period < 30:
        raise t.fail("period_days", "period_days must be at least 30, receipt days >= 0")
    return ValidationGate(
        rule_id=t.get("rule_id", str),
        templates=t.names("templates") or frozenset(),
        collector_roles=t.names("collector_roles") or frozenset(),
        receipt_business_days=receipt,
        period_days=period,
        source=t.get("source", str),
    )


def _furnishing(parent: PackTable) -> FurnishingRules | None:
    raw = parent.get("furnishing", dict, default=None, what="a [pack.credit_bureau.furnishing]")
    if raw is None:
        return None
    t = PackTable(raw, f"{parent.where}.furnishing", parent.file)
    after = t.get("notice_after_days", int, default=0)
    if after < 0:
        raise t.fail("notice_after_days", "must not be negative")
    actions = []
    for reason, action in t.get("actions", dict, what="a table of reason = action").items():
        if action not in FURNISHING_ACTIONS:
            allowed = ", ".join(sorted(FURNISHING_ACTIONS))
            raise t.fail(f"actions.{reason}", f"{action!r} is not one of {allowed}")
        actions.append((reason, action))
    return FurnishingRules(tuple(actions), t.get("source", str), after)


def _pack(t: PackTable) -> Pack:
    effective = t.get("effective_from", date, what="a TOML date like 2026-01-30")
    if isinstance(effective, datetime):
        raise t.fail("effective_from", "expected a date, not a date-time")
    caps_raw = t.get("caps", list, default=[], what="an array of [[pack.caps]] tables")
    caps = tuple(_cap(PackTable(c, f"{t.where}.caps[{i}]", t.file)) for i, c in enumerate(caps_raw))
    ids = [c.id for c in caps]
    if len(set(ids)) != len(ids):
        raise t.fail("caps", "cap ids must be unique within a pack")
    window = t.get("window", dict, default=None, what="a [pack.window] table")
    bureau = t.get("credit_bureau", dict, default=None, what="a [pack.credit_bureau] table")
    visit = t.get("visit", dict, default=None, what="a [pack.visit] table")
    validation = t.get("validation", dict, default=None, what="a [pack.validation] table")
    return Pack(
        jurisdiction=t.get("jurisdiction", str),
        version=t.get("version", str),
        effective_from=effective,
        window=None if window is None else _window(PackTable(window, f"{t.where}.window", t.file)),
        caps=caps,
        permitted_after_cease=t.names("permitted_after_cease"),
        lawyer_letter_templates=t.names("lawyer_letter_templates"),
        legal_wording_templates=t.names("legal_wording_templates"),
        credit_bureau=None
        if bureau is None
        else _credit_bureau(PackTable(bureau, f"{t.where}.credit_bureau", t.file)),
        visit=None
        if visit is None
        else parse_visit_rules(PackTable(visit, f"{t.where}.visit", t.file)),
        extends=t.get("extends", str, default=None),
        validation=None
        if validation is None
        else _validation(PackTable(validation, f"{t.where}.validation", t.file)),
        dispute_rule_id=t.get("dispute_rule_id", str, default=None),
        dispute_source=t.get("dispute_source", str, default=None),
    )


def load_packs(path: Path | str, templates: Path | None = None) -> PackSet:
    """Load and validate compliance.toml; raises ConfigError naming the file and key at fault.

    ``templates`` (default: the ``templates`` folder beside the file) gives every pack the
    messages marked as legal wording.
    """
    file = str(path)
    data = read_toml(path)
    root = PackTable(data, "(root)", file)
    if root.get("schema", str) != SCHEMA:
        raise root.fail("schema", f"expected {SCHEMA!r}")
    raw = root.get("pack", list, what="an array of [[pack]] tables")
    packs = tuple(_pack(PackTable(p, f"pack[{i}]", file)) for i, p in enumerate(raw))
    seen: set[tuple[str, date]] = set()
    for i, pack in enumerate(packs):
        where = PackTable({}, f"pack[{i}]", file)
        if (pack.jurisdiction, pack.effective_from) in seen:
            raise where.fail("effective_from", f"two {pack.jurisdiction} packs share this date")
        seen.add((pack.jurisdiction, pack.effective_from))
        if pack.extends is None and pack.window is None:
            raise where.fail("window", "missing (only a pack that extends another may omit it)")
        if pack.extends is not None and pack.extends not in {p.jurisdiction for p in packs}:
            raise where.fail("extends", f"no pack for jurisdiction {pack.extends!r}")
        if pack.extends == pack.jurisdiction:
            raise where.fail("extends", "a pack cannot extend itself")
    marked = legal_marked(templates if templates is not None else Path(path).parent / "templates")
    return PackSet(packs=tuple(replace(p, legal_marked=marked) for p in packs), source=file)
