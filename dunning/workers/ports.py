"""The worker pipeline's ports and results: what it needs from the ledger and the gate, and
the outcome of one message (the runtime acks after it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from dunning.intents import ContactIntent
from dunning.records import ContactHistory, GateDecision, IntentState, Suppression
from dunning.workers.ledger_writer import SentRecord

__all__ = ["ClaimView", "Gate", "LedgerPort", "Outcome", "OutcomeKind"]

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


class ClaimView(Protocol):
    @property
    def kind(self) -> str: ...
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
    ) -> Any: ...

    def release(self, intent_id: str, attempt: int, *, reason: str, now: datetime) -> None: ...

    def record_published(self, intents: Sequence[ContactIntent], *, now: datetime) -> set[str]: ...

    def record_sent(
        self,
        intent_id: str,
        attempt: int,
        *,
        provider_ref: str,
        status: str,
        detail: Mapping[str, str | int],
        now: datetime,
    ) -> None: ...

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
    ) -> Any: ...

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
