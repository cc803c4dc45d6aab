"""Suppressions written inside the caller's transaction, beside what asked for them.

An opt-out must land in the same transaction as the message that asked for it (an inbound STOP,
a complaint in a batch of email events): stored apart, a crash between the two would leave a
message recorded as handled whose opt-out never happened, and its retry would be taken for a
duplicate. On PostgreSQL each person is locked with the same advisory key as
:meth:`dunning.ledger.Ledger.claim`, so a claim in flight either sees the suppression or
finishes before it is written.

Each suppression keeps its source: the lender's book (``account_flag``), a STOP text
(``sms_inbound``, or Twilio's own record of one, ``provider_21610``), a keypad choice, an email
unsubscribe. A START lifts only the opt-outs that STOP texts made.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from dunning.intents import Channel
from dunning.ledger.schema import intents, suppressions
from dunning.ledger.states import WAITING
from dunning.ledger.transitions import write_audit
from dunning.records import IntentState, Suppression

__all__ = [
    "STOP_TEXT_SOURCES",
    "add_suppression",
    "cancel_waiting",
    "lift_stop_text_opt_outs",
]

#: Sources of SMS opt-outs that a START text may lift: they came from the person's own STOP.
STOP_TEXT_SOURCES = ("sms_inbound", "provider_21610")
OPT_OUT_REASON = "opt_out"


def add_suppression(conn: Connection, suppression: Suppression) -> bool:
    """Record ``suppression`` unless a live one with the same person, channel, debt, reason and
    source exists; True when written. The caller holds the person's lock
    (:func:`dunning.ledger.locks.lock_people`)."""
    channel = None if suppression.channel is None else suppression.channel.value
    live = conn.scalar(
        select(suppressions.c.id)
        .where(
            suppressions.c.person_id == suppression.person_id,
            suppressions.c.channel.is_(None)
            if channel is None
            else suppressions.c.channel == channel,
            suppressions.c.debt_id.is_(None)
            if suppression.debt_id is None
            else suppressions.c.debt_id == suppression.debt_id,
            suppressions.c.reason == suppression.reason,
            suppressions.c.source == suppression.source,
            suppressions.c.removed_at.is_(None),
        )
        .limit(1)
    )
    if live is not None:
        return False
    conn.execute(
        insert(suppressions).values(
            person_id=suppression.person_id,
            channel=channel,
            debt_id=suppression.debt_id,
            reason=suppression.reason,
            source=suppression.source,
            created_at=suppression.created_at,
        )
    )
    return True


def lift_stop_text_opt_outs(
    conn: Connection, person_ids: Sequence[str], *, asked_at: datetime, now: datetime
) -> int:
    """Lift the live SMS opt-outs of ``person_ids`` that STOP texts made no later than
    ``asked_at`` (the START's time); returns how many. Book flags and every other source stay."""
    total = 0
    for person_id in person_ids:
        lifted = conn.execute(
            update(suppressions)
            .where(
                suppressions.c.person_id == person_id,
                suppressions.c.channel == Channel.SMS.value,
                suppressions.c.reason == OPT_OUT_REASON,
                suppressions.c.source.in_(STOP_TEXT_SOURCES),
                suppressions.c.created_at <= asked_at,
                suppressions.c.removed_at.is_(None),
            )
            .values(removed_at=now)
        ).rowcount
        if lifted:
            detail = {
                "person_id": person_id,
                "reason": OPT_OUT_REASON,
                "channel": Channel.SMS.value,
                "sources": list(STOP_TEXT_SOURCES),
                "count": lifted,
            }
            write_audit(conn, None, "suppression_removed", now, detail=detail)
        total += int(lifted)
    return total


def cancel_waiting(
    conn: Connection, person_id: str, channel: Channel, *, reason: str, now: datetime
) -> list[str]:
    """Cancel the person's intents on ``channel`` not yet sent (queued or deferred); returns
    their ids. The worker acks a cancelled intent without sending it."""
    waiting = [s.value for s in WAITING]
    ids = list(
        conn.scalars(
            select(intents.c.intent_id).where(
                intents.c.person_id == person_id,
                intents.c.channel == channel.value,
                intents.c.state.in_(waiting),
            )
        )
    )
    for intent_id in ids:
        conn.execute(
            update(intents)
            .where(intents.c.intent_id == intent_id, intents.c.state.in_(waiting))
            .values(state=IntentState.CANCELLED.value, updated_at=now, last_error=reason)
        )
        write_audit(conn, intent_id, "cancelled", now, detail={"reason": reason})
    return ids
