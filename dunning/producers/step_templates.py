"""The template a strategy gives an intent's step as the strategy is now.

``dunning dlq reissue`` rebuilds a dead intent with it; the worker layer that re-issues is
handed this lookup, since only producers read strategies.
"""

from __future__ import annotations

from dunning.intents import ContactIntent, TemplateRef
from dunning.producers.strategy import Strategy

__all__ = ["template_now"]


def template_now(strategy: Strategy, intent: ContactIntent) -> tuple[TemplateRef | None, str]:
    """The template ``strategy`` gives the intent's step today, or None and why not.

    The locale stays the intent's (the account's), which the strategy does not set.
    """
    if intent.strategy != strategy.name:
        return None, f"strategy {intent.strategy!r} is not the configured {strategy.name!r}"
    variant = next((v for v in strategy.variants if v.name == intent.variant), None)
    if variant is None:
        return None, f"variant {intent.variant!r} is no longer in the strategy"
    step = next((s for s in variant.steps if s.id == intent.step), None)
    if step is None:
        return None, f"step {intent.step!r} is no longer in variant {intent.variant!r}"
    if step.channel is not intent.channel:
        return None, f"step {intent.step!r} now sends by {step.channel.value}"
    return TemplateRef(step.template, intent.template.locale), ""
