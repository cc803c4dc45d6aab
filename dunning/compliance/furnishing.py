"""The gate of the bureau step: whether an account's record may be furnished now, and how.

Rules and sources: docs/bureau.md, "The gate". The bureau step contacts nobody, so contact
windows and caps do not apply; what applies, in this order:

1. A record deleted from reporting (identity theft, error) always goes: the delete indicator
   is how a furnisher corrects a bureau (FCRA 623(a)(2), 605B).
2. Standing flags (suppressions in force, and the book's ``paid``/``disputed`` flags): the
   pack's ``[pack.credit_bureau.furnishing] actions`` say ``exclude`` (refuse with rule
   ``<J>.bureau.exclude.<reason>``), ``report_xb`` (report with compliance condition XB, never
   as undisputed) or ``report``.
3. The prior notice (``[pack.credit_bureau]``, :func:`check_prior_notice`): none sent and
   delivered refuses, one too young defers. A first-party furnisher of a pack with
   ``notice_after_days`` (US: FCRA 623(a)(7), 30 days) may furnish first: the decision
   allows with ``notice_due_by`` and the notice must follow; once that grace has passed since
   the first furnishing without a notice, it refuses like the others.

An allow carries what the record must say in ``inputs``: ``compliance_condition`` (``XB`` or
empty), ``notice_due_by`` when the notice is still owed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dunning.compliance.packs import Pack
from dunning.compliance.suppressions import check_prior_notice
from dunning.intents import Channel, ContactIntent
from dunning.records import ContactHistory, GateDecision

__all__ = ["FLAG_ORDER", "check_furnishing"]

#: The order the flags are looked at: an exclusion outranks a condition.
FLAG_ORDER = ("deceased", "bankrupt", "cease", "refusal_to_pay", "paid", "settled", "dispute")


def _refuse(pack: Pack, rule: str, reason: str, **inputs: str) -> GateDecision:
    return GateDecision(
        "refuse", f"{pack.jurisdiction}.{rule}", reason, pack.version, inputs=dict(inputs)
    )


def _standing(intent: ContactIntent, history: ContactHistory, now: datetime) -> set[str]:
    """Reasons in force for this person and debt, the book's flags included."""
    reasons = {
        s.reason
        for s in history.suppressions
        if s.person_id == intent.person_id
        and s.debt_id in (None, intent.debt_id)
        and s.in_force(now)
    }
    facts = intent.facts
    if facts is not None and facts.paid:
        reasons.add("paid")
    if facts is not None and facts.disputed:
        reasons.add("dispute")
    return reasons


def check_furnishing(
    pack: Pack, intent: ContactIntent, history: ContactHistory, now: datetime
) -> GateDecision:
    """The verdict on furnishing ``intent``'s account at ``now``."""
    gate = pack.credit_bureau
    rules = None if gate is None else gate.furnishing
    if gate is None or rules is None:
        return _refuse(
            pack, "bureau.no_rules",
            f"the {pack.jurisdiction} pack has no furnishing rules: nothing is reported",
        )  # fmt: skip
    facts = intent.facts
    if facts is None:
        return _refuse(pack, "bureau.no_facts", "a bureau intent without the account's facts")
    if facts.delete_reason is not None:
        return GateDecision.allow(
            pack.version, compliance_condition="", delete_reason=facts.delete_reason
        )
    reasons = _standing(intent, history, now)
    condition = ""
    for reason in FLAG_ORDER:
        if reason not in reasons:
            continue
        action = rules.action(reason)
        if action == "exclude":
            return _refuse(
                pack, f"bureau.exclude.{reason}",
                f"{reason}: not furnished while it stands ({rules.source})", flag=reason,
            )  # fmt: skip
        if action == "report_xb":
            condition = "XB"
    verdict = check_prior_notice(pack, intent, history, now)
    if verdict is None:
        return GateDecision.allow(pack.version, compliance_condition=condition)
    grace = _notice_grace(pack, intent, history, now)
    if verdict.action == "refuse" and grace is not None:
        return GateDecision(
            "allow",
            f"{pack.jurisdiction}.bureau.fcra623a7",
            f"first-party furnisher: the notice may follow within "
            f"{rules.notice_after_days} days of the first negative furnishing",
            pack.version,
            inputs={"compliance_condition": condition, "notice_due_by": grace.isoformat()},
        )
    return verdict


def _notice_grace(
    pack: Pack, intent: ContactIntent, history: ContactHistory, now: datetime
) -> datetime | None:
    """When the owed notice is due, if the first-party grace still allows furnishing first."""
    gate = pack.credit_bureau
    facts = intent.facts
    if gate is None or gate.furnishing is None or facts is None:
        return None
    days = gate.furnishing.notice_after_days
    if days <= 0 or facts.collector_role != "first_party":
        return None
    furnished = [
        a.at
        for a in history.attempts
        if a.channel is Channel.BUREAU and a.debt_id == intent.debt_id and a.at <= now
    ]
    first = min(furnished, default=now)
    due = first + timedelta(days=days)
    return due if now < due else None
