"""Receipt-side ledger operations: deduplicated receipts, inbound messages, cancellations.

:class:`ReceiptStore` is the part of :class:`dunning.ledger.Ledger` the webhook uses; each
method runs one transaction, so the webhook can call it through ``asyncio.to_thread`` without
holding a connection across awaits.

``inbound_messages`` keeps every inbound SMS and keypad choice, keyed by a dedupe key (the
inbound MessageSid, or ``gather:<CallSid>:<digits>``) so a retried webhook is recognised, and
carries the state of the one opt-out confirmation (``pending`` -> ``sending`` -> ``sent`` |
``failed``), which is what makes that confirmation go out at most once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dunning.clock import Clock, utc
from dunning.errors import LedgerError
from dunning.intents import Channel, ContactIntent
from dunning.ledger.core import LedgerCore
from dunning.ledger.locks import lock_people
from dunning.ledger.optouts import add_suppression, cancel_waiting
from dunning.ledger.queries import read_intent
from dunning.ledger.receipts import apply_receipt, insert_receipt
from dunning.ledger.receipts_inbound import (
    InboundRecord,
    KeywordOutcome,
    check_keyword,
    record_keyword,
)
from dunning.ledger.receipts_outbox import (
    FeedMessage,
    PendingMessage,
    add_to_feed,
    publish_pending,
    unpublished_count,
)
from dunning.ledger.schema import attempts, audit, inbound_messages, intents, receipts
from dunning.records import DialOutcome, IntentState, Suppression

__all__ = [
    "FeedFor",
    "InboundRecord",
    "ReceiptInput",
    "ReceiptOutcome",
    "ReceiptStore",
    "inbound_messages",
]


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    """What storing one receipt did: ``applied`` moved the intent, ``stored`` kept it (early or
    outranked), ``duplicate`` found the same receipt already stored and changed nothing.
    ``receipt_id`` is the stored row (None for a duplicate)."""

    kind: Literal["applied", "stored", "duplicate"]
    intent_id: str | None
    state: IntentState | None
    receipt_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiptInput:
    """One receipt to store. ``suppress_email`` (``complaint`` or ``bounced``) also records an
    email suppression for the matched intent's person, in the same transaction."""

    provider_ref: str
    channel: Channel
    status: str
    rank: int
    intent_id: str | None = None
    raw: Mapping[str, Any] | None = None
    dial_outcome: DialOutcome | None = None
    suppress_email: str | None = None


#: Builds the feed message of a receipt just stored (``receipts_outbox``), in its transaction.
FeedFor = Callable[[ReceiptInput, ReceiptOutcome], FeedMessage]


class ReceiptStore(LedgerCore):
    """Receipts, inbound messages and opt-out confirmations (see the module docstring)."""

    # --- receipts ---------------------------------------------------------------------------

    def store_receipt(
        self,
        *,
        provider_ref: str,
        channel: Channel,
        status: str,
        rank: int,
        now: datetime,
        intent_id: str | None = None,
        raw: Mapping[str, Any] | None = None,
        dial_outcome: DialOutcome | None = None,
    ) -> ReceiptOutcome:
        """Store a receipt once (same ref and status again is a duplicate) and apply it if it
        outranks.

        ``intent_id`` (from the signed callback URL) is kept only when the ledger knows the
        intent; otherwise the receipt waits, unmatched, for ``record_sent`` to learn its
        provider ref. A rank of 0 (unknown status) is stored and never applied.
        """
        item = ReceiptInput(provider_ref, channel, status, rank, intent_id, raw, dial_outcome)
        return self.store_receipts([item], now=now)[0]

    def store_receipts(
        self, items: Sequence[ReceiptInput], *, now: datetime, feed: FeedFor | None = None
    ) -> list[ReceiptOutcome]:
        """:meth:`store_receipt` for every item, all in one transaction: a batch is stored whole
        or not at all (LedgerError), so its retry never finds half of it already there. With
        ``feed``, each receipt stored (no duplicate) is owed to the receipts feed in that
        transaction."""
        now = utc(now)
        with self._tx() as conn:
            outcomes = [_store(conn, item, now) for item in items]
            if feed is not None:
                pairs = zip(items, outcomes, strict=True)
                entries = [(o.receipt_id, feed(i, o)) for i, o in pairs if o.receipt_id is not None]
                add_to_feed(conn, entries, now=now)
            owed: list[tuple[str, str]] = []
            for item, outcome in zip(items, outcomes, strict=True):
                if item.suppress_email and outcome.kind != "duplicate" and outcome.intent_id:
                    person = _person_of(conn, outcome.intent_id)
                    if person is not None:
                        owed.append((person, item.suppress_email))
            lock_people(conn, (person for person, _ in owed))
            for person, reason in owed:
                add_suppression(
                    conn, Suppression(person, Channel.EMAIL, reason, f"email_{reason}", now)
                )
        return outcomes

    def publish_receipt_feed(
        self, publish: Callable[[Sequence[PendingMessage]], None], *, clock: Clock, limit: int
    ) -> int:
        """Publish up to ``limit`` of the receipts the feed is owed (:mod:`receipts_outbox`)."""
        return publish_pending(self._engine, publish, clock=clock, limit=limit)

    def unpublished_receipts(self) -> int:
        """How many stored receipts the feed is still owed."""
        return unpublished_count(self._engine)

    def latest_answered_by(self, intent_id: str) -> str | None:
        """The AnsweredBy of the last answering-machine detection recorded for ``intent_id``."""
        with self._tx() as conn:
            detail = conn.scalar(
                select(audit.c.detail)
                .where(audit.c.intent_id == intent_id, audit.c.event == "amd")
                .order_by(audit.c.id.desc())
                .limit(1)
            )
        if not detail:
            return None
        value = json.loads(detail).get("answered_by")
        return str(value) if value else None

    def load_intent(self, intent_id: str) -> ContactIntent | None:
        """The stored ContactIntent, or None when the ledger does not know ``intent_id``."""
        with self._tx() as conn:
            body = conn.scalar(select(intents.c.body).where(intents.c.intent_id == intent_id))
        return None if body is None else read_intent(body)

    # --- inbound messages and opt-outs ------------------------------------------------------

    def record_inbound(self, record: InboundRecord) -> bool:
        """Store ``record``; False (nothing written) when its dedupe key was stored before."""
        values = {
            "dedupe_key": record.dedupe_key,
            "channel": record.channel.value,
            "kind": record.kind,
            "keyword": record.keyword,
            "possible_opt_out": record.possible_opt_out,
            "from_phone": record.from_phone,
            "to_phone": record.to_phone,
            "person_id": record.person_id,
            "intent_id": record.intent_id,
            "body": record.body,
            "received_at": utc(record.received_at),
            "confirmation": record.confirmation,
        }
        try:
            with self._tx() as conn:
                present = conn.scalar(
                    select(func.count())
                    .select_from(inbound_messages)
                    .where(inbound_messages.c.dedupe_key == record.dedupe_key)
                )
                if present:
                    return False
                conn.execute(insert(inbound_messages).values(**values))
        except LedgerError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return False  # a concurrent retry of the same webhook won the insert
            raise
        return True

    def record_keyword(self, record: InboundRecord, person_ids: Sequence[str]) -> KeywordOutcome:
        """Store a STOP or START and apply it to ``person_ids`` (everyone we contacted at its
        number) in one transaction (dunning/ledger/receipts_inbound.py)."""
        check_keyword(record)
        with self._tx() as conn:
            return record_keyword(conn, record, person_ids)

    def claim_confirmation(self, dedupe_key: str) -> bool:
        """Take the right to send the confirmation owed for ``dedupe_key``; True exactly once.

        ``pending`` and ``failed`` may be claimed; ``sending`` and ``sent`` may not, so a
        retried webhook never sends a second confirmation.
        """
        with self._tx() as conn:
            taken = conn.execute(
                update(inbound_messages)
                .where(
                    inbound_messages.c.dedupe_key == dedupe_key,
                    inbound_messages.c.confirmation.in_(("pending", "failed")),
                )
                .values(confirmation="sending")
            ).rowcount
        return bool(taken)

    def finish_confirmation(self, dedupe_key: str, *, provider_ref: str | None) -> None:
        """Mark the claimed confirmation ``sent`` (with its SID) or, with no ref, ``failed``."""
        state = "failed" if provider_ref is None else "sent"
        with self._tx() as conn:
            conn.execute(
                update(inbound_messages)
                .where(inbound_messages.c.dedupe_key == dedupe_key)
                .values(confirmation=state, confirmation_ref=provider_ref)
            )

    def people_for_phone(self, phone: str) -> list[tuple[str, str]]:
        """(person_id, jurisdiction) of everyone we contacted at ``phone``, most recent first.

        Looked up through the attempts (indexed by phone): a person who replies has been
        texted or called from us at that number.
        """
        with self._tx() as conn:
            rows = conn.execute(
                select(
                    attempts.c.person_id, intents.c.jurisdiction, func.max(attempts.c.started_at)
                )
                .join(intents, intents.c.intent_id == attempts.c.intent_id)
                .where(attempts.c.phone == phone)
                .group_by(attempts.c.person_id, intents.c.jurisdiction)
                .order_by(func.max(attempts.c.started_at).desc())
            ).all()
        seen: dict[str, str] = {}
        for person_id, jurisdiction, _ in rows:
            seen.setdefault(person_id, jurisdiction)
        return list(seen.items())

    def cancel_queued(
        self, person_id: str, channel: Channel, *, reason: str, now: datetime
    ) -> list[str]:
        """Cancel the person's intents on ``channel`` not yet sent (queued or deferred).

        The worker acks a cancelled intent without sending it. Returns the ids cancelled.
        """
        with self._tx() as conn:
            return cancel_waiting(conn, person_id, channel, reason=reason, now=utc(now))


def _store(conn: Connection, item: ReceiptInput, now: datetime) -> ReceiptOutcome:
    known = None
    if item.intent_id is not None:
        known = conn.scalar(
            select(intents.c.intent_id).where(intents.c.intent_id == item.intent_id)
        )
    receipt_id = insert_receipt(
        conn,
        provider_ref=item.provider_ref,
        channel=item.channel,
        status=item.status,
        rank=item.rank,
        now=now,
        intent_id=known,
        raw=item.raw,
    )
    if receipt_id is None:  # this provider event is already stored
        return ReceiptOutcome("duplicate", known, _state(conn, known))
    dial_outcome = item.dial_outcome
    if dial_outcome is DialOutcome.PENDING:
        dial_outcome = None  # a late "ringing" must not undo how the call ended
    # apply_receipt sets the dial outcome even when the status is outranked: the caps
    # count how the call ended whatever order the callbacks came in.
    applied = item.rank > 0 and apply_receipt(conn, receipt_id, now=now, dial_outcome=dial_outcome)
    matched = conn.scalar(select(receipts.c.intent_id).where(receipts.c.id == receipt_id))
    kind: Literal["applied", "stored"] = "applied" if applied else "stored"
    return ReceiptOutcome(kind, matched, _state(conn, matched), receipt_id)


def _person_of(conn: Connection, intent_id: str) -> str | None:
    person: str | None = conn.scalar(
        select(intents.c.person_id).where(intents.c.intent_id == intent_id)
    )
    return person


def _state(conn: Connection, intent_id: str | None) -> IntentState | None:
    if intent_id is None:
        return None
    value = conn.scalar(select(intents.c.state).where(intents.c.intent_id == intent_id))
    return None if value is None else IntentState(value)
