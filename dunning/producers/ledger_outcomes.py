"""The ledger as the evaluator's :class:`~dunning.producers.outcomes.OutcomeSource`.

Maps what the ledger knows about an account's earlier intents to outcome events:

    intent state delivered                         → delivered (on the intent's channel)
    voice attempt dial outcome no_answer, busy,
      voicemail, not_in_service                    → unanswered_call
    a live suppression with reason opt_out         → opt_out; dispute → disputed; paid → paid;
                                                     promise_to_pay → promise_to_pay

Intents in state ``unknown`` (no final receipt in time) are not delivered, by design.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.schema import attempts, intents, suppressions
from dunning.producers.outcomes import AccountOutcomes, Outcome, OutcomeKind

__all__ = ["LedgerOutcomes"]

_UNANSWERED = ("no_answer", "busy", "voicemail", "not_in_service")
_SUPPRESSION_KINDS = {
    "opt_out": OutcomeKind.OPT_OUT,
    "dispute": OutcomeKind.DISPUTED,
    "disputed": OutcomeKind.DISPUTED,
    "paid": OutcomeKind.PAID,
    "promise_to_pay": OutcomeKind.PROMISE_TO_PAY,
}


class LedgerOutcomes:
    def __init__(self, ledger: Ledger) -> None:
        self._engine = ledger.engine

    def outcomes(self, account_id: str, *, since: datetime) -> AccountOutcomes:
        events: list[Outcome] = []
        with self._engine.connect() as conn:
            delivered = conn.execute(
                select(intents.c.channel, intents.c.updated_at).where(
                    intents.c.account_id == account_id,
                    intents.c.state == "delivered",
                    intents.c.updated_at >= since,
                )
            )
            events += [Outcome(OutcomeKind.DELIVERED, at, Channel(ch)) for ch, at in delivered]
            unanswered = conn.execute(
                select(attempts.c.started_at)
                .join(intents, intents.c.intent_id == attempts.c.intent_id)
                .where(
                    intents.c.account_id == account_id,
                    attempts.c.channel == "voice",
                    attempts.c.dial_outcome.in_(_UNANSWERED),
                    attempts.c.started_at >= since,
                )
            )
            events += [
                Outcome(OutcomeKind.UNANSWERED_CALL, at, Channel.VOICE) for (at,) in unanswered
            ]
            person = conn.execute(
                select(intents.c.person_id).where(intents.c.account_id == account_id).limit(1)
            ).scalar()
            if person is not None:
                stops = conn.execute(
                    select(
                        suppressions.c.reason, suppressions.c.channel, suppressions.c.created_at
                    ).where(suppressions.c.person_id == person, suppressions.c.removed_at.is_(None))
                )
                for reason, channel, at in stops:
                    kind = _SUPPRESSION_KINDS.get(reason)
                    if kind is not None:
                        events.append(Outcome(kind, at, Channel(channel) if channel else None))
        return AccountOutcomes(tuple(events))
