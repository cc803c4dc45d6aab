"""Suppressions and stage gates: who may not be contacted, and which steps gate.

Rules and sources: docs/compliance.md, "Suppressions" and "Stage gates".

A :class:`~dunning.records.Suppression` applies to the intent when it is for the same person,
either names no debt or the intent's debt, and is in force at the instant of the check (a
promise to pay ends with its day; a debt is time-barred from the day after its statute of
limitations). Reasons are the strings below; a reason this module does not know suppresses
everything (fail closed). ``time_barred`` is not a suppression of its own: it only stops lawyer
letters and legal-action wording (1006.26(b)): templates marked ``{# legal: true #}``
(:mod:`dunning.templates`), those the pack names, and every lawyer letter.

Credit-bureau steps (late stage) need a logged prior notice: an attempt on the same debt, on one of
the pack's notice channels, with a notice template, that did not bounce (a bounced letter or email
is recorded with dial outcome ``failed`` or ``not_in_service``), at least ``notice_min_age_days``
old; where the pack allows it, a conversation about the debt counts as notice too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dunning.compliance.packs import Pack
from dunning.compliance.validation import check_validation_first
from dunning.intents import Channel, ContactIntent, Stage
from dunning.records import ContactHistory, DialOutcome, GateAction, GateDecision, Suppression

__all__ = [
    "CHANNEL_SCOPED", "REASONS", "TIME_BARRED", "check_prior_notice", "check_stage_gates",
    "check_suppressions",
]  # fmt: skip

TIME_BARRED = "time_barred"

#: reason -> (what it stops, source). CHANNEL_SCOPED reasons stop the channel named; others all.
REASONS: dict[str, tuple[str, str]] = {
    "opt_out": ("that channel (or all, when the suppression names none)", "1006.6(e); MIIT"),
    "cease": ("everything but the permitted notices", "15 USC 1692c(c)"),
    "refusal_to_pay": ("everything but the permitted notices", "15 USC 1692c(c)"),
    "dispute": ("collection of the debt until verified", "12 CFR 1006.38"),
    "attorney": ("direct contact; the attorney only", "15 USC 1692c(a)(2)"),
    "bankrupt": ("all collection contact", "11 USC 362 automatic stay"),
    "deceased": ("all contact; estate representative only", "12 CFR 1006.6(a)(4)"),
    "paid": ("collection contact", "policy: nothing is owed"),
    "settled": ("collection contact", "policy: nothing is owed"),
    "promise_to_pay": ("collection contact until the promise is due", "policy"),
    "hardship": ("collection contact during the hardship plan", "policy"),
    "litigation": (
        "collection contact about the debt while it is in litigation (the book's flag, or a "
        "handover to a law firm)",
        "policy; docs/legal.md",
    ),
    "third_party_stop": ("contact with that person", "CBA 2026 (reported)"),
    "bounced": ("that channel (the address bounced)", "provider bounce"),
    "complaint": ("that channel (marked as spam)", "provider complaint"),
}
#: Reasons that stop only the channel the suppression names (all channels when it names none).
CHANNEL_SCOPED = frozenset({"opt_out", "bounced", "complaint"})
_CEASE = frozenset({"cease", "refusal_to_pay"})
_BOUNCED = frozenset({DialOutcome.FAILED, DialOutcome.NOT_IN_SERVICE})


def _applies(s: Suppression, intent: ContactIntent, now: datetime) -> bool:
    mine = s.person_id == intent.person_id and s.debt_id in (None, intent.debt_id)
    return mine and s.in_force(now)


def _decision(
    pack: Pack, action: GateAction, rule: str, reason: str, **inputs: str
) -> GateDecision:
    return GateDecision(
        action=action,
        rule_id=f"{pack.jurisdiction}.{rule}",
        reason=reason,
        pack_version=pack.version,
        inputs=dict(inputs),
    )


def _permitted_after_cease(pack: Pack, intent: ContactIntent) -> bool:
    permitted = pack.permitted_after_cease or frozenset()
    return intent.step in permitted or intent.template.name in permitted


def check_suppressions(
    pack: Pack, intent: ContactIntent, history: ContactHistory, now: datetime
) -> GateDecision | None:
    """A ``suppress`` decision when a suppression in force at ``now`` forbids this contact."""
    for s in history.suppressions:
        if not _applies(s, intent, now) or s.reason == TIME_BARRED:
            continue
        inputs = {"suppression": s.reason, "source": s.source, "since": s.created_at.isoformat()}
        if s.reason in CHANNEL_SCOPED:
            if s.channel is None or s.channel == intent.channel:
                what = "all channels" if s.channel is None else s.channel.value
                said = "opted out of" if s.reason == "opt_out" else f"{s.reason}: stops"
                return _decision(
                    pack, "suppress", f"suppress.{s.reason}", f"{said} {what}", **inputs
                )
            continue
        if s.reason in _CEASE and _permitted_after_cease(pack, intent):
            continue
        stops, source = REASONS.get(s.reason, ("everything (unknown reason)", "fail closed"))
        return _decision(
            pack, "suppress", f"suppress.{s.reason}", f"{s.reason}: stops {stops} ({source})",
            **inputs,
        )  # fmt: skip
    return None


def _is_lawyer_letter(pack: Pack, intent: ContactIntent) -> bool:
    names = pack.lawyer_letter_templates or frozenset()
    named = intent.template.name in names or intent.step in names
    return intent.channel == Channel.LETTER and (named or intent.stage == Stage.MID)


def _has_legal_wording(pack: Pack, intent: ContactIntent) -> bool:
    names = pack.legal_wording_templates or frozenset()
    marked = (intent.template.locale, intent.channel.value, intent.template.name)
    return (
        intent.template.name in names
        or marked in pack.legal_marked
        or _is_lawyer_letter(pack, intent)
    )


def check_stage_gates(
    pack: Pack, intent: ContactIntent, history: ContactHistory, now: datetime
) -> GateDecision | None:
    """Stage gates: lawyer letters, time-barred debts, the validation notice first,
    credit-bureau steps. None when all pass."""
    mine = [s for s in history.suppressions if _applies(s, intent, now)]
    if _is_lawyer_letter(pack, intent) and any(s.reason == "dispute" for s in mine):
        return _decision(
            pack, "suppress", "stage.mid.dispute_open",
            "no lawyer letter while a dispute is open (1006.38)",
        )  # fmt: skip
    if _has_legal_wording(pack, intent) and any(s.reason == TIME_BARRED for s in mine):
        return _decision(
            pack, "suppress", "stage.time_barred.1006.26b",
            "debt is time-barred: no lawyer letter or legal-action wording (1006.26(b))",
            template=intent.template.name,
        )  # fmt: skip
    first = check_validation_first(pack, intent, history, now)
    return first or _check_credit_bureau(pack, intent, history, now)


def _check_credit_bureau(
    pack: Pack, intent: ContactIntent, history: ContactHistory, now: datetime
) -> GateDecision | None:
    gate = pack.credit_bureau
    if gate is None or not ({intent.template.name, intent.step} & gate.templates):
        return None
    min_age = timedelta(days=gate.notice_min_age_days)
    on_debt = [a for a in history.attempts if a.debt_id == intent.debt_id and a.at <= now]
    if gate.conversation_counts and any(
        a.channel == Channel.VOICE and a.dial_outcome == DialOutcome.CONVERSATION for a in on_debt
    ):
        return None
    notices = [
        a
        for a in on_debt
        if a.channel in gate.notice_channels
        and a.template in gate.notice_templates
        and a.dial_outcome not in _BOUNCED
    ]
    if any(a.at <= now - min_age for a in notices):
        return None
    if notices:
        return GateDecision(
            "defer",
            gate.rule_id,
            f"prior notice sent less than {gate.notice_min_age_days} days ago ({gate.source})",
            pack.version,
            until=min(a.at for a in notices) + min_age,
        )
    return GateDecision(
        "refuse",
        gate.rule_id,
        f"no logged prior notice before credit-bureau reporting ({gate.source})",
        pack.version,
    )


def check_prior_notice(
    pack: Pack, intent: ContactIntent, history: ContactHistory, now: datetime
) -> GateDecision | None:
    """The credit-bureau prior-notice rule alone: the bureau step's gate builds on it."""
    return _check_credit_bureau(pack, intent, history, now)
