"""Read-side queries of the ledger, run on a connection the caller owns.

They are plain functions so that :meth:`Ledger.claim` can run :func:`read_history` inside its
own transaction (the gate must see the caps as of the lock it holds), and the public read
methods can run them in a short transaction of their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Row, Select, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from dunning.intents import Channel, ContactIntent, encode_intent, intent_from_dict
from dunning.ledger.schema import attempts, audit, intents, receipts, suppressions
from dunning.records import (
    VALIDATION_NOTICE,
    ContactAttempt,
    ContactHistory,
    DialOutcome,
    GateDecision,
    IntentState,
    Suppression,
)

__all__ = ["NOT_CONTACTS", "NOT_SENT", "RECLAIMED", "Claim", "ClaimKind", "TimelineEvent"]

#: The outcome of an attempt that failed before its provider request was written (a template
#: that does not render, a provider host that does not resolve or refuses the connection).
NOT_SENT = "not_sent"
#: The outcome of an attempt left in ``sending`` that a reclaim replaced: its count passes to
#: the attempt that replaced it (an intent is one contact), or back to it as ``in_doubt`` when
#: that attempt never reaches the provider.
RECLAIMED = "reclaimed"
#: Attempt outcomes the caps do not count: never reached a provider, or counted by a later one.
NOT_CONTACTS = ("released", NOT_SENT, RECLAIMED)
#: What a claim decided (see :class:`Claim`).
ClaimKind = Literal["claimed", "done", "in_doubt", "gated"]


@dataclass(frozen=True)
class Claim:
    """What :meth:`Ledger.claim` decided for one delivery of an intent.

    ``claimed``: send now as ``attempt``; ``done``: already settled, ack without sending;
    ``in_doubt``: another attempt may be at the provider since ``sending_since``, wait;
    ``gated``: the compliance gate said no, ``decision`` says why.
    ``reclaimed_since`` is set on a ``claimed`` intent whose earlier attempt, started then, was
    left in ``sending`` without a receipt: ask the provider before sending again.
    """

    kind: ClaimKind
    state: IntentState
    attempt: int  # the attempt number claimed (1-based), or the last one
    decision: GateDecision | None = None
    sending_since: datetime | None = None
    reclaimed_since: datetime | None = None


@dataclass(frozen=True)
class TimelineEvent:
    """One line of an intent's story: an attempt, a receipt or an audit record."""

    at: datetime
    kind: str
    summary: str
    detail: Mapping[str, Any] = field(default_factory=dict)


def intent_values(intent: ContactIntent, *, now: datetime, published: bool) -> dict[str, Any]:
    """The ``intents`` row of a freshly seen intent, queued with no attempt yet."""
    return {
        "intent_id": intent.intent_id,
        "account_id": intent.account_id,
        "person_id": intent.person_id,
        "debt_id": intent.debt_id,
        "channel": intent.channel.value,
        "jurisdiction": intent.jurisdiction,
        "stage": intent.stage.value,
        "strategy": intent.strategy,
        "variant": intent.variant,
        "step": intent.step,
        "state": IntentState.QUEUED.value,
        "attempts": 0,
        "sending_since": None,
        "published_at": now if published else None,
        "created_at": intent.created_at,
        "updated_at": now,
        "expires_at": intent.expires_at,
        "last_error": None,
        "provider_ref": None,
        "body": encode_intent(intent).decode(),
    }


def insert_missing_intents(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the rows whose intent_id is new (others untouched); returns the ids inserted."""
    if not rows:
        return set()
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(intents).on_conflict_do_nothing(index_elements=["intent_id"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(intents).on_conflict_do_nothing(index_elements=["intent_id"])
    else:
        ids = [r["intent_id"] for r in rows]
        present = set(conn.scalars(select(intents.c.intent_id).where(intents.c.intent_id.in_(ids))))
        fresh = [r for r in rows if r["intent_id"] not in present]
        if fresh:
            conn.execute(insert(intents), fresh)
        return {r["intent_id"] for r in fresh}
    result = conn.execute(stmt.returning(intents.c.intent_id), list(rows))
    return set(result.scalars())


def _contacts(person: ColumnElement[bool]) -> Select[Any]:
    """Attempts since ``p_since`` that reached or may have reached a provider (the caps)."""
    return (
        select(attempts)
        .where(person, attempts.c.started_at >= _SINCE, attempts.c.outcome.not_in(NOT_CONTACTS))
        .order_by(attempts.c.started_at, attempts.c.id)
    )


def _standing(person: ColumnElement[bool]) -> Select[Any]:
    """Suppressions not lifted (the gate checks their bounds)."""
    return (
        select(suppressions)
        .where(person, suppressions.c.removed_at.is_(None))
        .order_by(suppressions.c.created_at, suppressions.c.id)
    )


# Built once: the claim reads a history on every send, and building the statements per call
# was a sixth of a worker's CPU.
_SINCE = bindparam("p_since", type_=attempts.c.started_at.type)
_PERSON = bindparam("p_person", type_=attempts.c.person_id.type)
_PEOPLE = bindparam("p_people", type_=attempts.c.person_id.type, expanding=True)
_HISTORY_CONTACTS = _contacts(attempts.c.person_id == _PERSON)
_HISTORY_STANDING = _standing(suppressions.c.person_id == _PERSON)
_HISTORIES_CONTACTS = _contacts(attempts.c.person_id.in_(_PEOPLE))
_HISTORIES_STANDING = _standing(suppressions.c.person_id.in_(_PEOPLE))


def _notices(person: ColumnElement[bool]) -> Select[Any]:
    """The first validation notice per debt that reached a provider, however old."""
    return (
        select(attempts.c.person_id, attempts.c.debt_id, func.min(attempts.c.started_at))
        .where(
            person,
            attempts.c.template == VALIDATION_NOTICE,
            attempts.c.outcome.not_in(NOT_CONTACTS),
        )
        .group_by(attempts.c.person_id, attempts.c.debt_id)
        .order_by(attempts.c.debt_id)
    )


_HISTORY_NOTICES = _notices(attempts.c.person_id == _PERSON)
_HISTORIES_NOTICES = _notices(attempts.c.person_id.in_(_PEOPLE))


def read_history(
    conn: Connection, person_id: str, *, since: datetime, notices: bool = True
) -> ContactHistory:
    """Attempts since ``since`` that reached or may have reached a provider, plus suppressions,
    plus (``notices``) when each debt's validation notice was first sent: only a third-party
    collector's intents need that, and the claim of any other skips the statement."""
    attempt_rows = conn.execute(_HISTORY_CONTACTS, {"p_person": person_id, "p_since": since})
    suppression_rows = conn.execute(_HISTORY_STANDING, {"p_person": person_id})
    sent = conn.execute(_HISTORY_NOTICES, {"p_person": person_id}) if notices else ()
    return ContactHistory(
        person_id=person_id,
        attempts=tuple(_attempt(r) for r in attempt_rows),
        suppressions=tuple(_suppression(r) for r in suppression_rows),
        validation_sent=tuple((debt, at) for _, debt, at in sent),
    )


def read_histories(
    conn: Connection, person_ids: Sequence[str], *, since: datetime
) -> dict[str, ContactHistory]:
    """:func:`read_history` for many people in two queries (the evaluator reads a batch)."""
    found: dict[str, tuple[list[ContactAttempt], list[Suppression]]] = {
        p: ([], []) for p in person_ids
    }
    notices: dict[str, list[tuple[str, datetime]]] = {p: [] for p in person_ids}
    if person_ids:
        people = list(person_ids)
        for row in conn.execute(_HISTORIES_CONTACTS, {"p_people": people, "p_since": since}):
            found[row.person_id][0].append(_attempt(row))
        for row in conn.execute(_HISTORIES_STANDING, {"p_people": people}):
            found[row.person_id][1].append(_suppression(row))
        for person_id, debt_id, at in conn.execute(_HISTORIES_NOTICES, {"p_people": people}):
            notices[person_id].append((debt_id, at))
    return {
        p: ContactHistory(
            person_id=p, attempts=tuple(a), suppressions=tuple(s),
            validation_sent=tuple(notices[p]),
        )
        for p, (a, s) in found.items()
    }  # fmt: skip


def _attempt(row: Row[Any]) -> ContactAttempt:
    return ContactAttempt(
        intent_id=row.intent_id,
        debt_id=row.debt_id,
        channel=Channel(row.channel),
        at=row.started_at,
        phone=row.phone,
        template=row.template,
        dial_outcome=None if row.dial_outcome is None else DialOutcome(row.dial_outcome),
    )


def _suppression(row: Row[Any]) -> Suppression:
    return Suppression(
        person_id=row.person_id,
        channel=None if row.channel is None else Channel(row.channel),
        reason=row.reason,
        source=row.source,
        created_at=row.created_at,
        debt_id=row.debt_id,
        until=row.until,
        starts_at=row.starts_at,
    )


def read_timeline(conn: Connection, intent_id: str) -> list[TimelineEvent]:
    """Attempts, receipts and audit records of one intent, oldest first."""
    events: list[TimelineEvent] = []
    for row in conn.execute(select(attempts).where(attempts.c.intent_id == intent_id)):
        detail = {
            k: v
            for k, v in {
                "attempt": row.attempt_no,
                "worker": row.worker,
                "outcome": row.outcome,
                "provider_ref": row.provider_ref,
                "error_class": row.error_class,
                "reason": row.reason,
                "provider_code": row.provider_code,
                "finished_at": row.finished_at,
                "dial_outcome": row.dial_outcome,
                **_json(row.detail),
            }.items()
            if v is not None
        }
        events.append(
            TimelineEvent(
                row.started_at,
                "attempt",
                f"attempt {row.attempt_no} by {row.worker}: {row.outcome}",
                detail,
            )
        )
    for row in conn.execute(select(receipts).where(receipts.c.intent_id == intent_id)):
        events.append(
            TimelineEvent(
                row.received_at,
                "receipt",
                f"{row.channel} receipt {row.status}" + ("" if row.applied else " (not applied)"),
                {"provider_ref": row.provider_ref, "rank": row.rank, "applied": row.applied},
            )
        )
    for row in conn.execute(select(audit).where(audit.c.intent_id == intent_id)):
        detail = {"rule_id": row.rule_id, "pack_version": row.pack_version, **_json(row.detail)}
        summary = row.event if row.rule_id is None else f"{row.event} ({row.rule_id})"
        events.append(
            TimelineEvent(row.at, row.event, summary, {k: v for k, v in detail.items() if v})
        )
    # Stable sort: at equal instants, attempts come before their receipts and audit lines.
    return sorted(events, key=lambda e: e.at)


def read_counts(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(intents.c.channel, intents.c.state, func.count()).group_by(
            intents.c.channel, intents.c.state
        )
    )
    return {(channel, state): count for channel, state, count in rows}


def read_intent(body: str) -> ContactIntent:
    """The ContactIntent stored in an ``intents.body`` column."""
    return intent_from_dict(json.loads(body))


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}
