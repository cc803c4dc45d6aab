"""The stage evaluator: accounts in, per account the intents to publish and what was skipped.

For each account on the evaluation day: the risk review (dunning/producers/risk.py) scores it and
picks its segment, its days past due pick a stage band, its id picks a variant (stable hash, with
the segment's weights), and the variant's steps due on that day of the stage for that segment
become ContactIntents, unless

- an account flag blocks all contact (deceased, bankrupt, attorney, cease, disputed, paid,
  hardship), or an open promise to pay (the book's or the ledger's, dunning/producers/
  promises.py) holds it until its day, or a channel flag blocks one channel (sms/email
  opt-out);
- the step is for other segments (``segments = [...]``);
- an outcome in the variant's ``stop_if`` happened (paid, promise, dispute, opt-out);
- the step's condition is not met (something delivered recently, too few unanswered calls);
- a legal step (lawyer letter) falls after the statute of limitations;
- the recipient lacks what the channel needs (phone, email, address);
- the pre-check (the worker's compliance gate, run early) would suppress or refuse it.

A promise whose day passed unpaid adds the strategy's ``broken_promise`` follow-up step.

A third-party collector's account gets a validation notice (12 CFR 1006.34) before anything
else: every evaluation with a step due proposes one first (step ``validation.notice``, a letter,
or an email when the book records E-SIGN consent); the pre-check drops it where no pack asks for
one or it was already sent, and the gate refuses the other steps until it has been sent.

Bureau steps (channel ``bureau``, docs/bureau.md) report the account rather than contact
anyone: flags, ``stop_if`` outcomes and pre-check refusals do not skip them (the worker's gate
records each verdict, so a cycle's exclusions are listed); their intents carry the facts.

Flags also become :class:`~dunning.records.Suppression` records (hardship, a promise to pay
until its day ends, a statute of limitations as ``time_barred`` from the day after it), so the
worker's gate knows about them even for intents published before the flag was set; the ledger
lifts the hardship, promise and time-barred ones once the book no longer sets them
(dunning/ledger/account_flags.py). The intent id is
``make_intent_id(account_id, step_id, as_of)``: a re-run on the same day yields the same ids.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dunning.clock import utc
from dunning.intents import (
    Channel,
    ContactIntent,
    Recipient,
    Stage,
    TemplateRef,
    make_intent_id,
)
from dunning.producers.account_flags import blocked_by, end_of_day_after, flag_suppressions
from dunning.producers.accounts import Account
from dunning.producers.bureau_facts import facts_for
from dunning.producers.outcomes import AccountOutcomes, OutcomeSource
from dunning.producers.promises import (
    NoPromises,
    OpenPromise,
    PromiseSource,
    account_promise,
    follow_up_due,
    promise_status,
)
from dunning.producers.risk import Skipped, assess, for_segment
from dunning.producers.scorecard import Score
from dunning.producers.segments import DEFAULT_SEGMENT, weights_of
from dunning.producers.strategy import Step, Strategy, Variant
from dunning.records import VALIDATION_NOTICE, GateDecision, Suppression

__all__ = [
    "Evaluation",
    "EvaluationSummary",
    "Precheck",
    "Skipped",
    "evaluate",
    "flag_suppressions",
]

Precheck = Callable[[ContactIntent], GateDecision | None]

#: The step of the validation notice a third-party collector sends first.
VALIDATION_STEP = "validation.notice"
THIRD_PARTY = "third_party"
#: Steps that contact nobody: a bureau record and the legal handover owe no validation notice.
_SILENT = (Channel.BUREAU, Channel.LEGAL)


def validation_step(account: Account, stage: Stage) -> Step:
    """The validation notice for ``account``: by email when E-SIGN consent is on record and
    there is an address, else by letter (docs/legal.md, "Validation notice")."""
    by_email = account.esign_consent and account.email is not None
    channel = Channel.EMAIL if by_email else Channel.LETTER
    return Step(VALIDATION_STEP, stage, channel, VALIDATION_NOTICE, (1,))


#: Accounts read ahead together so that batch-capable sources query once per batch.
BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The evaluator's verdict on one account for one day."""

    account: Account
    days_past_due: int
    stage: Stage | None  # None: outside every stage band (far before the due date)
    variant: str
    intents: tuple[ContactIntent, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    blocked: str | None = None  # the account-level reason no contact goes out at all
    segment: str = DEFAULT_SEGMENT
    segment_rule: str = ""  # the rule that matched, as text
    score: Score | None = None
    promise: OpenPromise | None = None
    promise_status: str | None = None  # open, kept or broken


def _recipient_gap(account: Account, channel: Channel) -> str | None:
    if channel in (Channel.SMS, Channel.VOICE) and account.phone is None:
        return "no_phone"
    if channel is Channel.EMAIL and account.email is None:
        return "no_email"
    if channel is Channel.LETTER and account.address is None and account.email is None:
        return "no_address"
    if channel is Channel.VISIT and account.address is None:
        return "no_address"
    if channel is Channel.VISIT and account.address is not None and not account.address.territory:
        return "no_territory"  # no team works an address outside every territory
    return None


def _step_gap(
    step: Step, account: Account, history: AccountOutcomes, as_of: date, now: datetime
) -> str | None:
    """Why ``step`` does not go out for ``account`` today, or None when it does."""
    if step.channel is Channel.SMS and account.sms_opt_out:
        return "opt_out"
    if step.channel is Channel.EMAIL and account.email_opt_out:
        return "opt_out"
    if step.legal and account.time_barred(as_of):
        return "time_barred"
    cond = step.if_no_delivered
    if cond is not None and history.delivered(
        cond.channel, since=now - timedelta(days=cond.within_days)
    ):
        return f"condition: {cond.channel.value} delivered within {cond.within_days}d"
    calls = step.if_unanswered_calls
    if calls is not None:
        count = history.unanswered_calls(since=now - timedelta(days=calls.within_days))
        if count < calls.at_least:
            return f"condition: {count} of {calls.at_least} unanswered calls"
    return _recipient_gap(account, step.channel)


def _intent(
    account: Account,
    step: Step,
    strategy: Strategy,
    variant: Variant,
    dpd: int,
    as_of: date,
    now: datetime,
) -> ContactIntent:
    return ContactIntent(
        intent_id=make_intent_id(account.account_id, step.id, as_of),
        account_id=account.account_id,
        person_id=account.person_id,
        debt_id=account.account_id,
        jurisdiction=account.jurisdiction,
        stage=step.stage,
        channel=step.channel,
        step=step.id,
        template=TemplateRef(step.template, account.locale),
        recipient=Recipient(
            name=account.name,
            phone=account.phone,
            email=account.email,
            postal_address=account.address,
        ),
        timezone=account.timezone,
        amount_due=account.amount_due,
        currency=account.currency,
        days_past_due=dpd,
        expires_at=end_of_day_after(account, as_of, strategy.expires_after_days),
        strategy=strategy.name,
        variant=variant.name,
        created_at=now,
        trace_id=uuid.uuid4().hex,
        collector_role=account.collector_role,
        itemization=account.itemization() if _itemized(account, step) else None,
        breakdown=account.breakdown if step.channel is Channel.LETTER else None,
        facts=facts_for(account) if step.channel is Channel.BUREAU else None,
    )


def _itemized(account: Account, step: Step) -> bool:
    """Validation notices, and a third-party collector's letters, state the itemization."""
    third_party_letter = step.channel is Channel.LETTER and account.collector_role == THIRD_PARTY
    return step.id == VALIDATION_STEP or third_party_letter


def _evaluate_one(
    account: Account,
    strategy: Strategy,
    as_of: date,
    now: datetime,
    outcomes: OutcomeSource,
    precheck: Precheck | None,
    promises: PromiseSource,
) -> Evaluation:
    dpd = account.days_past_due(as_of)
    promise = account_promise(account, promises)
    kept_or_not = None if promise is None else promise_status(account, promise, as_of)
    band = strategy.stage_for(dpd)
    review = assess(account, strategy, as_of=as_of, now=now, outcomes=outcomes, promises=promises)
    variant = strategy.variant_for(account.account_id, weights_of(review.segment))
    base = Evaluation(
        account,
        dpd,
        None if band is None else band.stage,
        variant.name,
        suppressions=flag_suppressions(
            account, as_of, now, lifetime_days=strategy.expires_after_days
        ),
        blocked=blocked_by(account, kept_or_not),
        segment=review.segment_name,
        segment_rule=review.segment_rule,
        score=review.score,
        promise=promise,
        promise_status=kept_or_not,
    )
    if band is None:
        return base
    day = band.day_of_stage(dpd)
    today = [s for s in variant.steps if s.stage is band.stage and s.due_on(day)]
    followup = strategy.broken_promise
    if (
        followup is not None
        and promise is not None
        and kept_or_not == "broken"
        and follow_up_due(promise, as_of)
    ):
        today.append(Step("broken_promise", band.stage, followup[0], followup[1], (day,)))
    due, other_segments = for_segment(today, strategy, review.segment_name)
    if not due:
        return _with(base, skipped=other_segments)
    flagged: tuple[Skipped, ...] = ()
    if base.blocked is not None:
        flagged = tuple(
            Skipped(s.id, s.channel, base.blocked, "account_flag")
            for s in due
            if s.channel is not Channel.BUREAU
        )
        due = [s for s in due if s.channel is Channel.BUREAU]
        if not due:
            return _with(base, skipped=other_segments + flagged)
    # Read history only for accounts with a step due: most of a book has none on a given day.
    history = outcomes.outcomes(
        account.account_id, since=now - timedelta(days=strategy.history_days)
    )
    stops = sorted(history.stops() & variant.stop_if)
    stopped = [s for s in due if s.channel is not Channel.BUREAU] if stops else []
    skipped: list[Skipped] = [*other_segments, *flagged]
    if stopped:
        reason = f"outcome: {stops[0].value}"
        skipped.extend(Skipped(s.id, s.channel, reason, "stop_if") for s in stopped)
        due = [s for s in due if s.channel is Channel.BUREAU]
    intents: list[ContactIntent] = []
    if account.collector_role == THIRD_PARTY and any(s.channel not in _SILENT for s in due):
        due = [validation_step(account, band.stage), *due]
    for step in due:
        gap = _step_gap(step, account, history, as_of, now)
        if gap is not None:
            skipped.append(Skipped(step.id, step.channel, gap))
            continue
        intent = _intent(account, step, strategy, variant, dpd, as_of, now)
        if intent.expires_at <= now:
            skipped.append(Skipped(step.id, step.channel, "stale: expires before now"))
            continue
        decision = precheck(intent) if precheck is not None else None
        if (
            decision is not None
            and decision.action in ("suppress", "refuse")
            and not _for_the_worker(step, decision)
        ):
            if step.id == VALIDATION_STEP and decision.action == "suppress":
                continue  # sent already, or not asked for here: not a step that was skipped
            reason = f"{decision.action}: {decision.reason}"
            skipped.append(Skipped(step.id, step.channel, reason, decision.rule_id))
            continue
        intents.append(intent)
    return _with(base, intents=tuple(intents), skipped=tuple(skipped))


def _for_the_worker(step: Step, decision: GateDecision) -> bool:
    """A bureau step the pre-check refused is published all the same: the worker's gate records
    the refusal, so the cycle's exclusions are in the ledger. Not where no furnishing rules
    exist (nothing is ever reported there)."""
    return step.channel is Channel.BUREAU and not decision.rule_id.endswith(".bureau.no_rules")


def _with(
    base: Evaluation, *, intents: tuple[ContactIntent, ...] = (), skipped: tuple[Skipped, ...] = ()
) -> Evaluation:
    # The constructor, not dataclasses.replace: this runs once per account with a step due.
    b = base
    return Evaluation(
        b.account, b.days_past_due, b.stage, b.variant, intents, skipped, b.suppressions,
        b.blocked, b.segment, b.segment_rule, b.score, b.promise, b.promise_status,
    )  # fmt: skip


def _batches(items: Iterable[Account], size: int) -> Iterator[tuple[Account, ...]]:
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


def evaluate(
    accounts: Iterable[Account],
    strategy: Strategy,
    *,
    as_of: date,
    now: datetime,
    outcomes: OutcomeSource,
    precheck: Precheck | None = None,
    promises: PromiseSource | None = None,
) -> Iterator[Evaluation]:
    """One Evaluation per account, lazily, in input order.

    ``as_of`` is the evaluation day (days past due and intent ids), ``now`` the instant the
    intents are created at (timezone-aware). ``precheck`` is the compliance gate run early: a
    ``suppress`` or ``refuse`` skips the intent with the rule id; ``defer`` still publishes,
    since the worker defers it to the window.
    """
    instant = utc(now)
    # Sources that can read a batch at once (the ledger) get told what is coming, so the cost
    # is a few queries per batch rather than several per account.
    prefetch_outcomes = getattr(outcomes, "prefetch", None)
    prefetch_people = getattr(precheck, "prefetch", None)
    promised: PromiseSource = promises if promises is not None else NoPromises()
    prefetch_promises = getattr(promised, "prefetch", None)
    since = instant - timedelta(days=strategy.history_days)
    batch_size = BATCH_SIZE if prefetch_outcomes or prefetch_people or prefetch_promises else 1
    for chunk in _batches(accounts, batch_size):
        if prefetch_outcomes is not None:
            prefetch_outcomes([a.account_id for a in chunk], since=since)
        if prefetch_people is not None:
            prefetch_people([a.person_id for a in chunk])
        if prefetch_promises is not None:
            prefetch_promises([a.account_id for a in chunk])
        for account in chunk:
            yield _evaluate_one(account, strategy, as_of, instant, outcomes, precheck, promised)


@dataclass
class EvaluationSummary:
    """Counts for the run's report: intents by (stage, channel, variant), skips by reason."""

    accounts: int = 0
    intents: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    blocked: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    suppressions: int = 0

    def add(self, evaluation: Evaluation) -> None:
        self.accounts += 1
        self.stages[evaluation.stage.value if evaluation.stage else "none"] += 1
        if evaluation.blocked is not None:
            self.blocked[evaluation.blocked] += 1
        for intent in evaluation.intents:
            self.intents[(intent.stage.value, intent.channel.value, intent.variant)] += 1
        for skip in evaluation.skipped:
            self.skipped[skip.reason] += 1
        self.suppressions += len(evaluation.suppressions)

    @property
    def intent_count(self) -> int:
        return sum(self.intents.values())
