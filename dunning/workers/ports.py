"""The worker's ports and results: what the pipeline and the reconcile sweeper need from the
ledger, what the pipeline needs from the gate, and the outcome of one message (the runtime
acks after it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from dunning.intents import ContactIntent
from dunning.ledger.queries import ClaimKind
from dunning.ledger.repairs import StuckSending
from dunning.records import ContactHistory, GateDecision, IntentState, Suppression
from dunning.workers.ledger_writer import SentRecord

__all__ = ["ClaimView", "Gate", "LedgerPort", "Outcome", "OutcomeKind", "ReconcileLedger"]

OutcomeKind = Literal[
    "sent", "duplicate", "delayed", "deferred", "in_doubt", "suppressed", "retry", "throttled",
    "dead", "expired",
]  # fmt: skip
Gate = Callable[[ContactIntent, ContactHistory, datetime], GateDecision]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    reason: str = ""
    intent_id: str | None = None
    rule_id: str | None = None
    created_at: datetime | None = None  # the intent's, on a send (metrics: publish → send)
    provider_ref: str | None = None  # on a send: the provider's id for it (SID, Message-ID)


class ClaimView(Protocol):
    """What the ledger's claim decided (:class:`dunning.ledger.Claim`)."""

    @property
    def kind(self) -> ClaimKind: ...
    @property
    def attempt(self) -> int: ...
    @property
    def decision(self) -> GateDecision | None: ...
    @property
    def sending_since(self) -> datetime | None: ...
    @property
    def reclaimed_since(self) -> datetime | None: ...


class LedgerPort(Protocol):
    """The part of :class:`dunning.ledger.Ledger` a worker uses (sync; called in a thread)."""

    def ping(self) -> None:
        """Raise when the database does not answer (the worker's readiness probe)."""
        ...

    def claim(
        self,
        intent: ContactIntent,
        *,
        worker: str,
        now: datetime,
        reconcile_after_s: float,
        gate: Callable[[ContactHistory], GateDecision] | None = None,
    ) -> ClaimView: ...

    def release(self, intent_id: str, attempt: int, *, reason: str, now: datetime) -> None: ...

    def record_published(self, intents: Sequence[ContactIntent], *, now: datetime) -> set[str]: ...

    def record_sent_many(self, records: Sequence[SentRecord]) -> None: ...

    def record_failure(
        self,
        intent_id: str,
        attempt: int,
        *,
        error_class: str,
        reason: str,
        provider_code: str | None,
        next_state: IntentState,
        now: datetime,
        reached_provider: bool = True,
    ) -> None: ...

    def set_state(
        self, intent_id: str, state: IntentState, *, reason: str, now: datetime
    ) -> bool: ...

    def add_suppression(self, suppression: Suppression) -> None: ...

    def audit(
        self,
        intent_id: str | None,
        event: str,
        *,
        now: datetime,
        rule_id: str | None = None,
        pack_version: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None: ...


class ReconcileLedger(Protocol):
    """The part of :class:`dunning.ledger.Ledger` the reconcile sweeper uses (sync)."""

    def stuck_sending(self, *, older_than: datetime) -> list[str]: ...

    def reconcile_stuck(
        self, intent_id: str, *, now: datetime, cutoff: datetime
    ) -> StuckSending: ...

    def unpublished(self, *, older_than: datetime, limit: int = 1000) -> list[ContactIntent]: ...

    def mark_published(self, intent_ids: Iterable[str], *, now: datetime) -> None: ...

    def expire_overdue(self, *, now: datetime) -> list[str]: ...

    def sweep_unknown(
        self, *, now: datetime, older_than: timedelta = ..., limit: int = 1000
    ) -> list[str]: ...
