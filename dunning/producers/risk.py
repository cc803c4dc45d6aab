"""The risk review of one account before any contact: its score, its segment and the weights.

The score is the book's ``score`` column when set (``score_model`` names the model), else the
strategy's scorecard (the built-in one with ``[scoring] model = "builtin"``), else none. The
segment is the first ``[[segments]]`` rule that matches the account's :class:`Profile`, or
``default``. The outcome history is read only when a rule or the scorecard needs it (broken
promises, contact rate), since most strategies decide on the book alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dunning.intents import Channel
from dunning.producers.accounts import Account
from dunning.producers.outcomes import AccountOutcomes, OutcomeKind, OutcomeSource
from dunning.producers.promises import PromiseSource
from dunning.producers.scorecard import Score
from dunning.producers.segments import DEFAULT_SEGMENT, Profile, Segment
from dunning.producers.strategy import Step, Strategy

__all__ = [
    "BROKEN_PROMISE_DAYS",
    "Assessment",
    "Skipped",
    "assess",
    "for_segment",
    "needs_history",
]

#: How far back broken promises count for a segment rule or the scorecard.
BROKEN_PROMISE_DAYS = 90
_HISTORY_KEYS = frozenset({"broken_promises", "contact_rate"})


@dataclass(frozen=True, slots=True)
class Skipped:
    """A step that was due but does not go out; ``rule_id`` is set when a gate rule decided."""

    step: str
    channel: Channel
    reason: str
    rule_id: str = ""


@dataclass(frozen=True, slots=True)
class Assessment:
    profile: Profile | None  # None: nothing to decide on (no segments, no score)
    segment: Segment | None  # None: no rule matched (the ``default`` segment)
    score: Score | None

    @property
    def segment_name(self) -> str:
        return DEFAULT_SEGMENT if self.segment is None else self.segment.name

    @property
    def segment_rule(self) -> str:
        return "no rule matched" if self.segment is None else self.segment.rule()


_NOTHING_TO_DECIDE = Assessment(None, None, None)


def needs_history(strategy: Strategy) -> bool:
    """Whether assessing an account reads its outcome history."""
    known = _NEEDS_HISTORY.get(id(strategy))
    if known is not None and known[0] is strategy:
        return known[1]
    card = strategy.scorecard
    needed = any(s.needs_history for s in strategy.segments) or (
        card is not None and any(c.name in _HISTORY_KEYS for c in card.characteristics)
    )
    _NEEDS_HISTORY[id(strategy)] = (strategy, needed)
    return needed


# Asked once per account: the answer per strategy is kept (the strategy object itself too, so
# that its id cannot be reused by another while cached).
_NEEDS_HISTORY: dict[int, tuple[Strategy, bool]] = {}


def _paid_share(account: Account) -> float | None:
    if account.principal <= 0:
        return None
    return max(0.0, float(1 - account.amount_due / account.principal))


def assess(
    account: Account,
    strategy: Strategy,
    *,
    as_of: date,
    now: datetime,
    outcomes: OutcomeSource,
    promises: PromiseSource | None = None,
) -> Assessment:
    """Score and segment ``account`` for ``as_of``; broken promises count from the outcomes and
    from ``promises`` when it keeps them (the ledger's)."""
    if not strategy.segments and strategy.scorecard is None and account.score is None:
        return _NOTHING_TO_DECIDE  # the common case without a risk review: no work per account
    dpd = account.days_past_due(as_of)
    history = AccountOutcomes()
    if needs_history(strategy):
        window = max(BROKEN_PROMISE_DAYS, strategy.contact_rate_days)
        history = outcomes.outcomes(account.account_id, since=now - timedelta(days=window))
    broken, rate = 0, None
    since = now - timedelta(days=BROKEN_PROMISE_DAYS)
    if history.events:
        broken = history.count(OutcomeKind.BROKEN_PROMISE, since=since)
        rate = history.contact_rate(since=now - timedelta(days=strategy.contact_rate_days))
    broken_count = getattr(promises, "broken_count", None)
    if broken_count is not None:
        broken += int(broken_count(account.account_id, since=since))
    # No payment at all since the first due date, once that date has passed.
    first_payment_default = dpd > 0 and account.last_payment_date is None
    score: Score | None = None
    if account.score is not None:
        score = Score(account.score, account.score_model or "book", ())
    elif strategy.scorecard is not None:
        score = strategy.scorecard.score(
            {
                "days_past_due": float(dpd),
                "balance": float(account.amount_due),
                "paid_share": _paid_share(account),
                "first_payment_default": float(first_payment_default),
                "broken_promises": float(broken),
                "contact_rate": rate,
            }
        )
    value = None if score is None else score.value
    profile = Profile(
        days_past_due=dpd,
        balance=account.amount_due,
        score=value,
        score_band=strategy.score_band_for(value),
        first_payment_default=first_payment_default,
        broken_promises=broken,
        contact_rate=rate,
        segment=account.segment,
    )
    segment = next((s for s in strategy.segments if s.matches(profile)), None)
    return Assessment(profile, segment, score)


def for_segment(
    steps: list[Step], strategy: Strategy, segment: str
) -> tuple[list[Step], tuple[Skipped, ...]]:
    """The steps that run for ``segment``, and the others as skipped by the ``segment`` rule."""
    if not strategy.segments:
        return steps, ()
    skipped = tuple(
        Skipped(s.id, s.channel, f"segment: for {', '.join(sorted(s.segments or ()))}", "segment")
        for s in steps
        if not s.runs_for(segment)
    )
    return [s for s in steps if s.runs_for(segment)], skipped
