"""The rules of a field visit (``[pack.visit]`` of compliance.toml) and the check of one visit.

A pack's visit section names the local daytime window in which collectors may be at the door,
the size of the team, and a list of rules, each with its id, its source and the ``check`` it
applies to a recorded visit. :func:`check_visit` is pure: it turns the facts the collectors
reported into the rules they break, and the caller records each one as a compliance incident.
The send-time gate applies the rest (suppressions, caps such as one visit per debt per 7 days)
to the visit channel as to every channel. Rules and sources: docs/compliance.md, "Field visits".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from dunning.clock import utc
from dunning.errors import ConfigError

__all__ = [
    "CHECKS",
    "Violation",
    "VisitFacts",
    "VisitRule",
    "VisitRules",
    "check_visit",
    "parse_visit_rules",
]

Check = Literal[
    "window", "team", "identification", "entry_consent", "third_party", "recording",
    "workplace", "debt_notice",
]  # fmt: skip
#: What each check looks at in a recorded visit.
CHECKS: dict[str, str] = {
    "window": "arrival and departure inside the local visit window",
    "team": "at least min_collectors collectors on site",
    "identification": "identification and the authorisation shown",
    "entry_consent": "premises entered only with the occupant's consent",
    "third_party": "no one spoken to but the debtor (or spouse, guardian, attorney)",
    "recording": "a recording (SHA-256) from arrival to departure",
    "workplace": "not at the workplace when the employer prohibits it",
    "debt_notice": "no note or door-hanger that mentions the debt",
}


class TableReader(Protocol):
    """The typed reader of one compliance.toml table (packs.py's, which names file and key)."""

    data: dict[str, Any]
    where: str
    file: str

    def fail(self, key: str, why: str) -> ConfigError: ...

    def get(self, key: str, kind: type, *, default: Any = ..., what: str = "") -> Any: ...

    def clock_time(self, key: str) -> time: ...


@dataclass(frozen=True, slots=True)
class VisitRule:
    id: str
    check: Check
    source: str


@dataclass(frozen=True, slots=True)
class VisitRules:
    """``start <= local time < end``: when a team may be at the door; ``min_collectors``:
    the smallest team a task is assigned to; ``recording_grace_s``: how far a recording's
    start may follow the arrival (and its end precede the departure) and still cover it."""

    start: time
    end: time
    min_collectors: int
    recording_grace_s: int
    rules: tuple[VisitRule, ...]
    window_rule_id: str

    def local_window(self, day: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The window of the local day of ``day`` in ``zone``, as two UTC instants."""
        local_day = utc(day).astimezone(zone).date()
        opens = datetime.combine(local_day, self.start, tzinfo=zone)
        closes = datetime.combine(local_day, self.end, tzinfo=zone)
        return utc(opens), utc(closes)


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What the collectors report about one visit (docs/visits.md, "Recording an outcome")."""

    arrived_at: datetime
    departed_at: datetime
    timezone: str
    collectors: int
    id_shown: bool
    entered: bool
    entry_consent: bool
    third_party_contacted: bool
    recording_sha256: str | None
    recording_started_at: datetime | None
    recording_ended_at: datetime | None
    at_workplace: bool = False
    employer_prohibits: bool = False
    notice_mentions_debt: bool = False


@dataclass(frozen=True, slots=True)
class Violation:
    rule_id: str
    reason: str
    source: str


def check_visit(rules: VisitRules, facts: VisitFacts) -> list[Violation]:
    """Every rule ``facts`` break, in the order of the pack; empty when the visit complied."""
    found = []
    for rule in rules.rules:
        reason = _broken(rule.check, rules, facts)
        if reason is not None:
            found.append(Violation(rule.id, reason, rule.source))
    return found


def _broken(check: Check, rules: VisitRules, f: VisitFacts) -> str | None:
    if check == "window":
        zone = ZoneInfo(f.timezone)
        arrived, departed = (utc(x).astimezone(zone) for x in (f.arrived_at, f.departed_at))
        inside = (
            arrived.date() == departed.date()
            and rules.start <= arrived.time()
            and departed.time() <= rules.end
        )
        shown = f"{arrived:%H:%M}-{departed:%H:%M} local"
        window = f"{rules.start:%H:%M}-{rules.end:%H:%M}"
        return None if inside else f"visit {shown} is outside the window {window}"
    if check == "team":
        enough = f.collectors >= rules.min_collectors
        return (
            None
            if enough
            else f"{f.collectors} collector(s) on site, {rules.min_collectors} required"
        )
    if check == "identification":
        return None if f.id_shown else "identification and authorisation not shown"
    if check == "entry_consent":
        return None if not f.entered or f.entry_consent else "premises entered without consent"
    if check == "third_party":
        return "an unrelated third party was contacted" if f.third_party_contacted else None
    if check == "recording":
        return _recording_gap(rules, f)
    if check == "workplace":
        prohibited = f.at_workplace and f.employer_prohibits
        return "visit at a workplace whose employer prohibits it" if prohibited else None
    return "a note or door-hanger mentioned the debt" if f.notice_mentions_debt else None


def _recording_gap(rules: VisitRules, f: VisitFacts) -> str | None:
    if not f.recording_sha256 or f.recording_started_at is None or f.recording_ended_at is None:
        return "no recording of the visit"
    grace = timedelta(seconds=rules.recording_grace_s)
    if utc(f.recording_started_at) > utc(f.arrived_at) + grace:
        return "the recording started after the arrival"
    if utc(f.recording_ended_at) < utc(f.departed_at) - grace:
        return "the recording ended before the departure"
    return None


def parse_visit_rules(t: TableReader) -> VisitRules:
    """``[pack.visit]``; raises ConfigError naming the file and key at fault."""
    start, end = t.clock_time("start"), t.clock_time("end")
    if start >= end:
        raise t.fail("end", "must be later than start (a visit window does not cross midnight)")
    team = t.get("min_collectors", int)
    if team < 2:
        raise t.fail("min_collectors", "must be at least 2")
    grace = t.get("recording_grace_s", int, default=60)
    if grace < 0:
        raise t.fail("recording_grace_s", "must not be negative")
    raw = t.get("rules", list, what="an array of [[pack.visit.rules]] tables")
    rules = []
    for i, item in enumerate(raw):
        where = f"{t.where}.rules[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{t.file}: {where} must be a table")
        check = item.get("check")
        if check not in CHECKS:
            raise ConfigError(
                f"{t.file}: {where}.check: {check!r} is not one of {', '.join(CHECKS)}"
            )
        for key in ("id", "source"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise ConfigError(f"{t.file}: {where}.{key}: expected a non-empty string")
        rules.append(VisitRule(item["id"], check, item["source"]))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise t.fail("rules", "rule ids must be unique")
    window_ids = [r.id for r in rules if r.check == "window"]
    return VisitRules(start, end, team, grace, tuple(rules), window_ids[0] if window_ids else "")
