"""Why an account gets what it gets: one evaluation as plain data, the same input the same output.

``dunning evaluate --explain`` prints it; :func:`decision_detail` is what the audit log keeps
for every published intent (segment, score, reason codes, variant), so a decision can be
explained later without re-running the strategy.
"""

from __future__ import annotations

from typing import Any

from dunning.producers.evaluator import Evaluation

__all__ = ["decision_detail", "explain", "explain_lines"]


def decision_detail(evaluation: Evaluation) -> dict[str, Any]:
    """The risk decision behind an evaluation: segment, rule, score, reason codes, variant."""
    score = evaluation.score
    return {
        "segment": evaluation.segment,
        "segment_rule": evaluation.segment_rule,
        "score": None if score is None else score.value,
        "score_model": None if score is None else score.model,
        "reason_codes": [] if score is None else list(score.reasons),
        "variant": evaluation.variant,
    }


def explain(evaluation: Evaluation) -> dict[str, Any]:
    """Everything --explain shows for one account (no instants, no trace ids)."""
    return {
        "account_id": evaluation.account.account_id,
        "days_past_due": evaluation.days_past_due,
        "stage": None if evaluation.stage is None else evaluation.stage.value,
        **decision_detail(evaluation),
        "blocked": evaluation.blocked,
        "promise": None
        if evaluation.promise is None
        else {
            "pay_by": evaluation.promise.pay_by.isoformat(),
            "source": evaluation.promise.source,
            "status": evaluation.promise_status,
        },
        "steps_chosen": [
            {"step": i.step, "channel": i.channel.value, "intent_id": i.intent_id}
            for i in evaluation.intents
        ],
        "steps_skipped": [
            {"step": s.step, "channel": s.channel.value, "reason": s.reason, "rule": s.rule_id}
            for s in evaluation.skipped
        ],
    }


def explain_lines(evaluation: Evaluation) -> list[str]:
    """The explanation as text lines, for the terminal."""
    data = explain(evaluation)
    score = data["score"]
    lines = [
        f"account {data['account_id']}: {data['days_past_due']} days past due, "
        f"stage {data['stage'] or 'none'}",
        f"  segment   {data['segment']} ({data['segment_rule']})",
        "  score     " + ("none" if score is None else f"{score} (model {data['score_model']})"),
    ]
    lines += [f"  reason    {code}" for code in data["reason_codes"]]
    lines.append(f"  variant   {data['variant']}")
    if data["blocked"]:
        lines.append(f"  blocked   {data['blocked']}")
    if data["promise"]:
        promise = data["promise"]
        lines.append(
            f"  promise   pay by {promise['pay_by']} ({promise['source']}): {promise['status']}"
        )
    lines += [f"  chosen    {s['step']} ({s['channel']})" for s in data["steps_chosen"]]
    lines += [
        f"  skipped   {s['step']} ({s['channel']}): {s['reason']}"
        + (f" [rule {s['rule']}]" if s["rule"] else "")
        for s in data["steps_skipped"]
    ]
    if not data["steps_chosen"] and not data["steps_skipped"]:
        lines.append("  no step due today")
    return lines
