"""Inbound STOP and START texts: stored and applied in one transaction, in the order first seen.

Twilio's inbound-message webhook carries no time of its own (its form has MessageSid, From, To,
Body and the like, no date; the Message resource's ``date_created`` would cost an API call per
message). So a number's keywords are ordered by when the ledger first saw each MessageSid
(``inbound_messages.received_at``, then the row id), and only the latest one decides:

- a copy of a message already seen (same MessageSid) changes nothing;
- a STOP or START that is not the latest keyword from its number is stored and not applied, so
  a replayed or late START never lifts a later STOP, nor a replayed STOP undo a later START;
- a START lifts only the opt-outs that STOP texts made before it (sources ``sms_inbound`` and
  ``provider_21610``), never the lender's book flags or any other suppression.

The message, the suppressions and the cancellations commit together: a crash in between leaves
none of them, and the provider's retry is then a first sight, not a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dunning.clock import utc
from dunning.intents import Channel
from dunning.ledger.locks import lock_people
from dunning.ledger.optouts import (
    OPT_OUT_REASON,
    add_suppression,
    cancel_waiting,
    lift_stop_text_opt_outs,
)
from dunning.ledger.schema import inbound_messages
from dunning.records import Suppression

__all__ = ["KEYWORD_KINDS", "InboundRecord", "KeywordOutcome", "check_keyword", "record_keyword"]

KEYWORD_KINDS = ("opt_out", "opt_in")
#: The source of an opt-out from a STOP text we received.
SMS_INBOUND = "sms_inbound"


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One inbound message or keypad choice, as stored for the record and for agents."""

    dedupe_key: str
    channel: Channel
    kind: str
    received_at: datetime
    from_phone: str | None = None
    to_phone: str | None = None
    person_id: str | None = None
    intent_id: str | None = None
    body: str | None = None
    keyword: str | None = None
    possible_opt_out: bool = False
    confirmation: str | None = None  # "pending" when a confirmation is owed


@dataclass(frozen=True, slots=True)
class KeywordOutcome:
    """What one STOP or START did.

    ``fresh``: first sight of this message. ``applied``: it was the number's latest keyword and
    decided its opt-out state. ``changed``: suppressions added or lifted. ``cancelled``: intents
    cancelled by a STOP.
    """

    fresh: bool
    applied: bool
    changed: int = 0
    cancelled: tuple[str, ...] = ()


def check_keyword(record: InboundRecord) -> str:
    """The sender of a STOP or START ``record``; ValueError for any other message."""
    if record.kind not in KEYWORD_KINDS or record.from_phone is None:
        raise ValueError("record_keyword takes an opt_out or opt_in message with a sender")
    return record.from_phone


def record_keyword(
    conn: Connection, record: InboundRecord, person_ids: Sequence[str]
) -> KeywordOutcome:
    """Store inbound ``record`` (kind ``opt_out`` or ``opt_in``) and apply it to ``person_ids``
    (everyone we contacted at its number), in the caller's transaction; see the module
    docstring. The caller checked the record with :func:`check_keyword`."""
    phone = check_keyword(record)
    now = utc(record.received_at)
    # One number's keywords one at a time, and its people locked as Ledger.claim locks them.
    lock_people(conn, [f"sms-keywords:{phone}", *person_ids])
    if not _insert_new(conn, record):
        return KeywordOutcome(fresh=False, applied=False)
    if _latest_keyword(conn, phone) != record.dedupe_key:
        # A later keyword from this number decides: this message owes no confirmation.
        conn.execute(
            update(inbound_messages)
            .where(inbound_messages.c.dedupe_key == record.dedupe_key)
            .values(confirmation=None)
        )
        return KeywordOutcome(fresh=True, applied=False)
    if record.kind == "opt_in":
        lifted = lift_stop_text_opt_outs(conn, person_ids, asked_at=now, now=now)
        return KeywordOutcome(fresh=True, applied=True, changed=lifted)
    added, cancelled = 0, []
    for person_id in person_ids:
        suppression = Suppression(person_id, Channel.SMS, OPT_OUT_REASON, SMS_INBOUND, now)
        added += int(add_suppression(conn, suppression))
        reason = f"{OPT_OUT_REASON} ({SMS_INBOUND})"
        cancelled += cancel_waiting(conn, person_id, Channel.SMS, reason=reason, now=now)
    return KeywordOutcome(True, True, changed=added, cancelled=tuple(cancelled))


def _insert_new(conn: Connection, record: InboundRecord) -> bool:
    """Insert ``record``; False (nothing written) when its dedupe key is already stored."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(inbound_messages)
        .values(
            dedupe_key=record.dedupe_key,
            channel=record.channel.value,
            kind=record.kind,
            keyword=record.keyword,
            possible_opt_out=record.possible_opt_out,
            from_phone=record.from_phone,
            to_phone=record.to_phone,
            person_id=record.person_id,
            intent_id=record.intent_id,
            body=record.body,
            received_at=utc(record.received_at),
            confirmation=record.confirmation,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(inbound_messages.c.id)
    )
    return conn.execute(statement).first() is not None


def _latest_keyword(conn: Connection, phone: str) -> str | None:
    latest: str | None = conn.scalar(
        select(inbound_messages.c.dedupe_key)
        .where(
            inbound_messages.c.channel == Channel.SMS.value,
            inbound_messages.c.from_phone == phone,
            inbound_messages.c.kind.in_(KEYWORD_KINDS),
        )
        .order_by(inbound_messages.c.received_at.desc(), inbound_messages.c.id.desc())
        .limit(1)
    )
    return latest
