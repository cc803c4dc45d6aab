"""Producers: account sources, the strategy, the stage evaluator and the intent publisher.

open_accounts(FILE) ─► evaluate(accounts, strategy, ...) ─► IntentPublisher ─► dunning.intents

:mod:`dunning.producers.run` puts them together: one run, or runs on a schedule.
"""

from dunning.producers.accounts import Account
from dunning.producers.evaluator import Evaluation, EvaluationSummary, Skipped, evaluate
from dunning.producers.outcomes import (
    AccountOutcomes,
    InMemoryOutcomes,
    NoOutcomes,
    Outcome,
    OutcomeKind,
    OutcomeSource,
)
from dunning.producers.publisher import IntentPublisher
from dunning.producers.sources import BadRow, BadRowLog, accounts_only, open_accounts
from dunning.producers.strategy import Strategy, load_strategy
from dunning.producers.synthetic import synthetic_book

__all__ = [
    "Account",
    "AccountOutcomes",
    "BadRow",
    "BadRowLog",
    "Evaluation",
    "EvaluationSummary",
    "InMemoryOutcomes",
    "IntentPublisher",
    "NoOutcomes",
    "Outcome",
    "OutcomeKind",
    "OutcomeSource",
    "Skipped",
    "Strategy",
    "accounts_only",
    "evaluate",
    "load_strategy",
    "open_accounts",
    "synthetic_book",
]
