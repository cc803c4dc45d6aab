"""Disputes as events: a dispute opens a hold on one debt, a recorded verification lifts it.

A dispute arrives as an inbound message (an SMS or email reply, a dispute link, a portal's
signed webhook) or from the lender's book. Opening one, in one transaction under the person's
lock (as :meth:`dunning.ledger.Ledger.claim` takes it): the inbound message is stored (its
dedupe key makes a provider's retry a no-op), a ``dispute`` suppression of the debt is written,
every intent of the debt not yet sent is cancelled, and the audit gets ``dispute_opened``
against the intent the reply answered, so ``dunning intent show`` tells the story. A claim in
flight either sees the hold or finishes before it is written.

Verification lifts every live dispute hold of the debt (whatever its source) and writes
``dispute_verified`` with the document's SHA-256 against the debt's latest intent.

The ledger records; which rule applies (1006.38, 民法典 objections) is the caller's to say in
``rule_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, desc, insert, select, update

from dunning.clock import utc
from dunning.ledger.core import LedgerCore
from dunning.ledger.locks import lock_people
from dunning.ledger.optouts import add_suppression
from dunning.ledger.schema import attempts, audit, inbound_messages, intents, suppressions
from dunning.ledger.states import WAITING
from dunning.ledger.transitions import write_audit
from dunning.records import IntentState, Suppression

__all__ = ["DISPUTE_REASON", "DebtRef", "DisputeEvent", "DisputeStore", "Verification"]

DISPUTE_REASON = "dispute"


@dataclass(frozen=True, slots=True)
class DebtRef:
    """Which debt a reply is about: the person, the debt, the intent answered, its rule pack."""

    person_id: str
    debt_id: str
    intent_id: str | None
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class DisputeEvent:
    """One dispute as received. ``dedupe_key`` names the message (``sms:<MessageSid>``,
    ``portal:<id>``): a second delivery of it changes nothing."""

    dedupe_key: str
    debt: DebtRef
    source: str  # sms_inbound, email_inbound, dispute_link, portal, operator, account_flag
    channel: str
    received_at: datetime
    rule_id: str
    body: str | None = None
    from_phone: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verification:
    """What a recorded verification lifted: holds, and the intent its audit line names."""

    lifted: int
    intent_id: str | None
    person_id: str | None


class DisputeStore(LedgerCore):
    """Dispute holds (see the module docstring)."""

    def debt_for_phone(self, phone: str) -> DebtRef | None:
        """The debt of the latest intent we sent to ``phone`` (a reply answers the last text)."""
        with self._tx(read=True, what="finding the debt for a reply") as conn:
            row = conn.execute(
                select(
                    intents.c.person_id, intents.c.debt_id, intents.c.intent_id,
                    intents.c.jurisdiction,
                )
                .join(attempts, attempts.c.intent_id == intents.c.intent_id)
                .where(attempts.c.phone == phone)
                .order_by(desc(attempts.c.started_at), desc(attempts.c.id))
                .limit(1)
            ).first()  # fmt: skip
        return None if row is None else DebtRef(*row)

    def debt_for_intent(self, intent_id: str) -> DebtRef | None:
        """The debt an intent (an email replied to, a link followed) was about."""
        with self._tx(read=True, what="finding the debt of an intent") as conn:
            row = conn.execute(
                select(
                    intents.c.person_id, intents.c.debt_id, intents.c.intent_id,
                    intents.c.jurisdiction,
                ).where(intents.c.intent_id == intent_id)
            ).first()  # fmt: skip
        return None if row is None else DebtRef(*row)

    def debt_for_account(self, account_id: str) -> DebtRef | None:
        """The debt of an account, through its latest intent (None: never evaluated)."""
        with self._tx(read=True, what="finding the debt of an account") as conn:
            row = conn.execute(
                select(
                    intents.c.person_id, intents.c.debt_id, intents.c.intent_id,
                    intents.c.jurisdiction,
                )
                .where(intents.c.account_id == account_id)
                .order_by(desc(intents.c.created_at), desc(intents.c.intent_id))
                .limit(1)
            ).first()  # fmt: skip
        return None if row is None else DebtRef(*row)

    def open_dispute(self, event: DisputeEvent) -> tuple[bool, list[str]]:
        """Record ``event``: (fresh, ids of the intents cancelled). A copy of an event already
        recorded returns (False, [])."""
        now = utc(event.received_at)
        debt = event.debt
        with self._tx(what="recording a dispute") as conn:
            lock_people(conn, [debt.person_id])
            if not _first_sight(conn, event, now):
                return False, []
            hold = Suppression(
                debt.person_id, None, DISPUTE_REASON, event.source, now, debt.debt_id
            )
            add_suppression(conn, hold)
            cancelled = _cancel_debt(conn, debt, now, event.rule_id)
            write_audit(
                conn, debt.intent_id, "dispute_opened", now, rule_id=event.rule_id,
                detail={
                    "person_id": debt.person_id, "debt_id": debt.debt_id,
                    "source": event.source, "channel": event.channel,
                    "cancelled": cancelled, **event.detail,
                },
            )  # fmt: skip
            return True, cancelled

    def verify_dispute(
        self, debt: DebtRef, *, rule_id: str, now: datetime, detail: Mapping[str, Any]
    ) -> Verification:
        """Lift every live dispute hold of ``debt`` and audit the verification."""
        now = utc(now)
        with self._tx(what="recording a verification") as conn:
            lock_people(conn, [debt.person_id])
            lifted = conn.execute(
                update(suppressions)
                .where(
                    suppressions.c.person_id == debt.person_id,
                    suppressions.c.debt_id == debt.debt_id,
                    suppressions.c.reason == DISPUTE_REASON,
                    suppressions.c.removed_at.is_(None),
                )
                .values(removed_at=now)
            ).rowcount
            # Beside each dispute it answers, so each intent's timeline tells the whole story.
            answered = _disputed_intents(conn, debt) or [debt.intent_id]
            for intent_id in answered:
                write_audit(
                    conn, intent_id, "dispute_verified", now, rule_id=rule_id,
                    detail={
                        "person_id": debt.person_id, "debt_id": debt.debt_id, "lifted": lifted,
                        **detail,
                    },
                )  # fmt: skip
        return Verification(int(lifted), answered[0], debt.person_id)

    def open_disputes(self, debt_id: str) -> list[Suppression]:
        """The live dispute holds of a debt, oldest first."""
        with self._tx(read=True, what="reading dispute holds") as conn:
            rows = conn.execute(
                select(suppressions)
                .where(
                    suppressions.c.debt_id == debt_id,
                    suppressions.c.reason == DISPUTE_REASON,
                    suppressions.c.removed_at.is_(None),
                )
                .order_by(suppressions.c.created_at, suppressions.c.id)
            ).all()
        return [
            Suppression(r.person_id, None, r.reason, r.source, r.created_at, r.debt_id)
            for r in rows
        ]


def _disputed_intents(conn: Connection, debt: DebtRef) -> list[str | None]:
    """The debt's intents that a dispute was opened against, in the order opened."""
    of_debt = select(intents.c.intent_id).where(
        intents.c.person_id == debt.person_id, intents.c.debt_id == debt.debt_id
    )
    rows = conn.scalars(
        select(audit.c.intent_id)
        .where(audit.c.event == "dispute_opened", audit.c.intent_id.in_(of_debt))
        .order_by(audit.c.id)
    )
    return list(dict.fromkeys(rows))


def _first_sight(conn: Connection, event: DisputeEvent, now: datetime) -> bool:
    seen = conn.scalar(
        select(inbound_messages.c.id).where(inbound_messages.c.dedupe_key == event.dedupe_key)
    )
    if seen is not None:
        return False
    conn.execute(
        insert(inbound_messages).values(
            dedupe_key=event.dedupe_key,
            channel=event.channel,
            kind="dispute",
            keyword=event.source,
            possible_opt_out=False,
            from_phone=event.from_phone,
            person_id=event.debt.person_id,
            intent_id=event.debt.intent_id,
            body=event.body,
            received_at=now,
            handled_at=now,
        )
    )
    return True


def _cancel_debt(conn: Connection, debt: DebtRef, now: datetime, rule_id: str) -> list[str]:
    """Cancel every intent of the debt not yet sent, on every channel."""
    waiting = [s.value for s in WAITING]
    ids = sorted(
        conn.scalars(
            select(intents.c.intent_id).where(
                intents.c.person_id == debt.person_id,
                intents.c.debt_id == debt.debt_id,
                intents.c.state.in_(waiting),
            )
        )
    )
    reason = f"dispute open ({rule_id})"
    for intent_id in ids:
        conn.execute(
            update(intents)
            .where(intents.c.intent_id == intent_id, intents.c.state.in_(waiting))
            .values(state=IntentState.CANCELLED.value, updated_at=now, last_error=reason)
        )
        write_audit(conn, intent_id, "cancelled", now, rule_id=rule_id, detail={"reason": reason})
    return ids
