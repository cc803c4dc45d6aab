"""What a run writes about its risk decisions: each account's bucket of the day, and the decision
(segment, score, reason codes, variant) behind each intent, in batches."""

from __future__ import annotations

from datetime import date, datetime

from dunning.ledger import Ledger
from dunning.ledger.risk_store import BucketRow
from dunning.producers.evaluator import Evaluation
from dunning.producers.explain import decision_detail
from dunning.producers.rolls import bucket_of

__all__ = ["RiskLog"]

_BATCH = 500


class RiskLog:
    """Buffers a run's bucket rows and decisions and writes them to the ledger in batches."""

    def __init__(self, ledger: Ledger, *, as_of: date, now: datetime) -> None:
        self._ledger, self._as_of, self._now = ledger, as_of, now
        self._buckets: list[BucketRow] = []
        self._decisions: list[tuple[str, dict[str, object]]] = []

    def add(self, evaluation: Evaluation) -> None:
        account = evaluation.account
        bucket = bucket_of(account, evaluation.days_past_due)
        self._buckets.append(
            BucketRow(account.account_id, bucket, evaluation.segment, evaluation.variant)
        )
        if evaluation.intents:
            detail = decision_detail(evaluation)
            self._decisions += [(i.intent_id, detail) for i in evaluation.intents]
        if len(self._buckets) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        self._ledger.record_buckets(self._as_of, self._buckets)
        self._ledger.record_decisions(self._decisions, now=self._now)
        self._buckets, self._decisions = [], []
