"""What a run writes about its risk decisions: each account's bucket of the day and the decision
(segment, score, reason codes, variant) behind each intent, in batches; and what became of
promises to pay (a book promise seen the first time, a promise kept or broken), at once."""

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
        self._promise(evaluation)

    def _promise(self, evaluation: Evaluation) -> None:
        promise, status = evaluation.promise, evaluation.promise_status
        if promise is None or status is None:
            return
        account = evaluation.account
        if promise.promise_id is None and status == "open":
            self._ledger.add_promise(
                account.account_id, account.person_id, pay_by=promise.pay_by, amount=None,
                source="book", now=self._now,
            )  # fmt: skip
        elif promise.promise_id is not None and status in ("kept", "broken"):
            self._ledger.close_promise(promise.promise_id, status, now=self._now)

    def flush(self) -> None:
        self._ledger.record_buckets(self._as_of, self._buckets)
        self._ledger.record_decisions(self._decisions, now=self._now)
        self._buckets, self._decisions = [], []
