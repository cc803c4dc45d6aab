"""The US validation notice (12 CFR 1006.34): its period, and the gate that sends it first.

A third-party debt collector gives the consumer the validation information in the initial
communication or within five days of it; dunning sends the notice first and nothing else before
it (rule ``[pack.validation] rule_id``). The validation period runs from the day the notice is
sent to 30 days after the consumer receives it; the collector may assume receipt five days
after sending, not counting Saturdays, Sundays or legal public holidays (1006.34(b)(5)); the
calendar is :mod:`dunning.business_days`.

Rules and sources: docs/legal.md, "Validation notice".
"""

from __future__ import annotations

from datetime import datetime

from dunning.compliance.packs import Pack
from dunning.intents import ContactIntent
from dunning.records import VALIDATION_NOTICE, ContactHistory, GateDecision

__all__ = ["check_validation_first"]


def check_validation_first(
    pack: Pack, intent: ContactIntent, history: ContactHistory, now: datetime
) -> GateDecision | None:
    """Refuse a third-party collector's contact about a debt whose validation notice has not
    been sent; suppress a second validation notice for the same debt. None when neither."""
    gate = pack.validation
    if gate is None:
        if intent.template.name == VALIDATION_NOTICE and intent.collector_role == "third_party":
            # The evaluator proposes one for every third-party account; only some packs ask.
            return GateDecision(
                "suppress", f"{pack.jurisdiction}.validation.not_required",
                "this jurisdiction's pack asks for no validation notice", pack.version,
            )  # fmt: skip
        return None
    if intent.collector_role not in gate.collector_roles:
        return None
    sent_at = history.validation_sent_at(intent.debt_id)
    is_notice = intent.template.name in gate.templates or intent.step in gate.templates
    if is_notice:
        if sent_at is not None and sent_at <= now:
            return GateDecision(
                "suppress", gate.rule_id,
                f"the validation notice for this debt was sent on {sent_at.date()} "
                f"({gate.source})",
                pack.version, inputs={"validation_sent_at": sent_at.isoformat()},
            )  # fmt: skip
        return None
    if sent_at is None:
        return GateDecision(
            "refuse", gate.rule_id,
            f"no collection contact before the validation notice is sent ({gate.source})",
            pack.version, inputs={"collector_role": intent.collector_role},
        )  # fmt: skip
    return None
