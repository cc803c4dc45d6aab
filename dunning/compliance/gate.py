"""The compliance gate: allow, defer, suppress or refuse one contact intent at one instant.

Checks run in a fixed order and the first that objects decides: a rule pack for the jurisdiction,
a valid time zone, suppressions, stage gates, ``not_before``, the contact window, then caps. A
deferral's ``until`` is the first instant at which the window is open **and** no cap blocks, so a
deferred intent does not come back only to be deferred again. Expiry is the worker's business.

The contact window applies only to the channels it names (``Window.channels``): the packs leave
out ``letter``, which the post delivers at no time of day the sender chooses. Everything else
(suppressions, stage gates, ``not_before``, caps on the channel) applies to letters as to the rest.

Fail closed: anything missing or unexpected (no pack, bad zone, history of another person, an
error inside the gate) refuses the send with a reason; nothing here ever defaults to allow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog

from dunning.clock import utc
from dunning.compliance.caps import CapHit, check_caps
from dunning.compliance.furnishing import check_furnishing
from dunning.compliance.packs import Pack, PackSet, Window
from dunning.compliance.suppressions import check_stage_gates, check_suppressions
from dunning.compliance.windows import allowed, next_opening, zone_or_none
from dunning.intents import Channel, ContactIntent
from dunning.records import ContactHistory, GateDecision

__all__ = ["ComplianceGate"]

log = structlog.get_logger(__name__)

# Each step moves past one window close or one cap release; real packs settle in two or three.
_MAX_STEPS = 16


class ComplianceGate:
    """Decides whether one intent may be sent now; pure over (intent, history, now).

    ``jitter_s`` spreads openings over ``[0, jitter_s)`` seconds after the window opens, stably
    per intent, so a whole book deferred overnight does not fire at 08:00:00.
    """

    def __init__(self, packs: PackSet, *, jitter_s: int = 900) -> None:
        if jitter_s < 0:
            raise ValueError("jitter_s must not be negative")
        self.packs = packs
        self.jitter_s = jitter_s

    def precheck(
        self, intent: ContactIntent, history: ContactHistory, now: datetime
    ) -> GateDecision:
        """The evaluator's pre-check: the same decision as :meth:`decide`.

        The evaluator skips what is suppressed or refused and still publishes what is deferred
        (the worker's check at send time is the one that counts).
        """
        return self.decide(intent, history, now)

    def decide(self, intent: ContactIntent, history: ContactHistory, now: datetime) -> GateDecision:
        """The gate's verdict for sending ``intent`` at ``now`` given the person's ``history``."""
        try:
            decision = self._decide(intent, history, utc(now))
        except Exception as exc:  # fail closed: a fault in the gate never sends
            log.exception("compliance_gate_error", intent_id=intent.intent_id)
            decision = GateDecision(
                "refuse", "gate.internal_error", f"gate failed: {type(exc).__name__}"
            )
        log.debug(
            "compliance_decision",
            intent_id=intent.intent_id,
            action=decision.action,
            rule_id=decision.rule_id,
            pack_version=decision.pack_version,
        )
        return decision

    def _decide(
        self, intent: ContactIntent, history: ContactHistory, now: datetime
    ) -> GateDecision:
        pack = self.packs.select(intent.jurisdiction, now)
        if pack is None:
            return GateDecision(
                "refuse",
                "no_rule_pack",
                f"no rule pack in force for jurisdiction {intent.jurisdiction!r}",
                inputs={"jurisdiction": intent.jurisdiction},
            )
        base = {"jurisdiction": intent.jurisdiction, "timezone": intent.timezone}
        if history.person_id != intent.person_id:
            return GateDecision(
                "refuse", "gate.history_mismatch", "history is for another person",
                pack.version, inputs=base,
            )  # fmt: skip
        tz = zone_or_none(intent.timezone)
        if tz is None or pack.window is None:
            return GateDecision(
                "refuse", f"{pack.jurisdiction}.timezone.unknown",
                f"unknown or invalid time zone {intent.timezone!r}: no send",
                pack.version, inputs=base,
            )  # fmt: skip
        base["local_time"] = now.astimezone(tz).isoformat(timespec="seconds")
        base["channel"] = intent.channel.value
        if intent.channel is Channel.BUREAU:  # contacts nobody: no window, no caps
            return _with_inputs(check_furnishing(pack, intent, history, now), base)
        if intent.channel is Channel.LEGAL:  # contacts nobody: the handover rules run at send
            held = check_suppressions(pack, intent, history, now)
            return _with_inputs(held or GateDecision.allow(pack.version), base)
        blocked = check_suppressions(pack, intent, history, now) or check_stage_gates(
            pack, intent, history, now
        )
        if blocked is not None and blocked.action != "defer":
            return _with_inputs(blocked, base)
        if intent.channel is Channel.VISIT and pack.visit is None:
            return GateDecision(
                "refuse", f"{pack.jurisdiction}.visit.no_rules",
                f"pack {pack.version} has no [pack.visit] rules: no field visits",
                pack.version, inputs=base,
            )  # fmt: skip
        start, first = now, blocked
        if blocked is not None and blocked.until is not None:
            start = max(start, utc(blocked.until))
        if intent.not_before is not None and utc(intent.not_before) > start:
            start = utc(intent.not_before)
            first = first or GateDecision(
                "defer", "intent.not_before", "not before the evaluator's scheduled time",
                pack.version,
            )  # fmt: skip
        window = pack.window if pack.window.governs(intent.channel) else None
        until, hit = self._schedule(pack, window, intent, history, start, tz)
        if first is None and until == now:
            return GateDecision.allow(pack.version, **base)
        if first is None and window is not None and not allowed(now, tz, window):
            first = GateDecision(
                "defer", window.rule_id,
                f"outside the contact window {window.start:%H:%M}-{window.end:%H:%M} "
                f"local ({window.source})",
                pack.version,
            )  # fmt: skip
        if first is None and hit is not None:
            first = GateDecision(
                "defer", hit.rule.id,
                f"cap reached: {hit.count} of {hit.rule.limit} ({hit.rule.source})"
                if hit.rule.kind == "count"
                else f"cooldown after {'/'.join(sorted(hit.rule.trigger_outcomes))} "
                f"({hit.rule.source})",
                pack.version,
                inputs={"count": str(hit.count), "limit": str(hit.rule.limit)},
            )  # fmt: skip
        assert first is not None  # until moved past now, so some rule moved it
        return GateDecision(
            "defer", first.rule_id, first.reason, pack.version,
            until=until, inputs={**base, **first.inputs, "until": until.isoformat()},
        )  # fmt: skip

    def _schedule(
        self,
        pack: Pack,
        window: Window | None,
        intent: ContactIntent,
        history: ContactHistory,
        start: datetime,
        tz: ZoneInfo,
    ) -> tuple[datetime, CapHit | None]:
        """The first instant >= ``start`` inside the window (any instant when ``window`` is
        None) with no cap blocking, and the first cap hit met on the way (None when no cap
        blocked)."""

        def opening(at: datetime) -> datetime:
            if window is None:
                return at
            return next_opening(at, tz, window, self.jitter_s, intent.intent_id)

        at, first_hit = start, None
        for _ in range(_MAX_STEPS):
            at = opening(at)
            hit = check_caps(pack.caps, intent, history, at, tz)
            if hit is None:
                return at.astimezone(UTC), first_hit
            first_hit = first_hit or hit
            at = max(hit.free_at, at)
        # Still blocked after many steps: come back then, and the gate will look again.
        return opening(at).astimezone(UTC), first_hit


def _with_inputs(decision: GateDecision, base: dict[str, str]) -> GateDecision:
    return GateDecision(
        decision.action,
        decision.rule_id,
        decision.reason,
        decision.pack_version,
        decision.until,
        {**base, **decision.inputs},
    )
