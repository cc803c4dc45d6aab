"""Records shared by the ledger, the compliance gate and the workers.

They live below both ``ledger/`` and ``compliance/`` so that neither imports the other: the
ledger reads and writes these, the gate reasons over them, the worker passes them between.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from dunning.intents import Channel

__all__ = [
    "TERMINAL_STATES",
    "VALIDATION_NOTICE",
    "ContactAttempt",
    "ContactHistory",
    "DialOutcome",
    "GateAction",
    "GateDecision",
    "IntentState",
    "Suppression",
]


#: The template of the US validation notice (12 CFR 1006.34): the history keeps when it was
#: first sent for each debt, however long ago, since every later contact depends on it.
VALIDATION_NOTICE = "validation_notice"


class IntentState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"
    EXPIRED = "expired"
    DEAD = "dead"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


#: States after which an intent is never sent again (a redelivery is acked without sending).
TERMINAL_STATES = frozenset(
    {
        IntentState.SENT,
        IntentState.DELIVERED,
        IntentState.FAILED,
        IntentState.UNDELIVERED,
        IntentState.SUPPRESSED,
        IntentState.EXPIRED,
        IntentState.DEAD,
        IntentState.CANCELLED,
        IntentState.UNKNOWN,
    }
)


class DialOutcome(enum.StrEnum):
    """What a call attempt came to; the call caps count these.

    Which outcomes each cap counts: docs/compliance.md, "Frequency caps".
    """

    CONVERSATION = "conversation"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    NOT_IN_SERVICE = "not_in_service"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class ContactAttempt:
    """One provider attempt for a person, as the caps see it."""

    intent_id: str
    debt_id: str
    channel: Channel
    at: datetime
    phone: str | None = None
    dial_outcome: DialOutcome | None = None
    template: str | None = None  # template name: the credit-bureau gate looks for a prior notice


@dataclass(frozen=True, slots=True)
class Suppression:
    """A standing "do not contact"; ``starts_at`` and ``until`` bound it when the book says so
    (a promise to pay holds until its day ends; a debt is time-barred from the day after its
    statute of limitations)."""

    person_id: str
    channel: Channel | None  # None: every channel
    reason: str  # opt_out, cease, dispute, attorney, bankrupt, deceased, paid, ...
    source: str  # sms_inbound, keypad, email_unsubscribe, account_flag, provider_21610, operator
    created_at: datetime
    debt_id: str | None = None  # None: every debt of the person
    until: datetime | None = None  # None: until lifted; else no longer applies from this instant
    starts_at: datetime | None = None  # None: from when it was recorded

    def in_force(self, now: datetime) -> bool:
        """Whether it applies at ``now`` (lifted ones never reach the gate at all)."""
        started = self.starts_at is None or self.starts_at <= now
        return started and (self.until is None or now < self.until)


@dataclass(frozen=True, slots=True)
class ContactHistory:
    """What the gate needs to know about a person, read inside the claim transaction."""

    person_id: str
    attempts: tuple[ContactAttempt, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    #: (debt id, first sent at) of every validation notice that went to a provider
    validation_sent: tuple[tuple[str, datetime], ...] = ()

    def validation_sent_at(self, debt_id: str) -> datetime | None:
        """When the debt's validation notice was first sent, or None."""
        return next((at for debt, at in self.validation_sent if debt == debt_id), None)


GateAction = Literal["allow", "defer", "suppress", "refuse"]


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The compliance gate's verdict on one send, written to the audit table as it stands.

    ``defer`` carries ``until`` (the next allowed instant); ``suppress`` ends the intent as
    suppressed; ``refuse`` dead-letters it (a rule forbids it outright, e.g. no law firm).
    """

    action: GateAction
    rule_id: str
    reason: str
    pack_version: str = ""
    until: datetime | None = None
    inputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def allow(cls, pack_version: str = "", **inputs: str) -> GateDecision:
        return cls("allow", "allow", "all rules passed", pack_version, None, dict(inputs))
