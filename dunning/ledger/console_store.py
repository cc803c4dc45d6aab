"""What the operator console keeps and reads in the ledger: its users, people search, a
person's intents, today's contacts and recent send and delivery counts.

The ``console_users`` table (migration 0011) holds one row per login: the name, the role and
an argon2 hash of the password; the hash is made by the console, never here. Every console
action is written to the ``audit`` table with the operator's name in its detail (through
:meth:`Ledger.audit`), so the audit trail stays in one place.

Search is an exact match on a normalised value (the console normalises phone numbers to E.164
and emails to lower case): a phone is looked up in the attempts and inbound messages, an email
in the encoded intents (the ledger keeps recipient data only in the intent body).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Column, String, Table, func, insert, select, update

from dunning.clock import utc
from dunning.errors import ConfigError
from dunning.ledger import engine as engines
from dunning.ledger.core import LedgerCore
from dunning.ledger.schema import (
    UTCDateTime,
    attempts,
    audit,
    inbound_messages,
    intents,
    metadata,
    receipts,
)

__all__ = [
    "ConsoleStore",
    "ConsoleUser",
    "DayContacts",
    "PersonMatch",
    "SearchKind",
    "console_users",
]

console_users = Table(
    "console_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    # The collector a ``collector`` login is (migration 0014); null for the other roles.
    Column("collector_id", String(64)),
)

SearchKind = Literal["account", "person", "phone", "email"]
_MATCH_LIMIT = 50
#: Gate decisions that held an intent back (written by the claim).
_HELD_EVENTS = ("defer", "suppress", "refuse")
#: Statuses of a receipt that says the message reached the person.
_DELIVERED = ("delivered", "read", "completed", "answered")


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    name: str
    role: str
    password_hash: str
    created_at: datetime
    disabled_at: datetime | None
    collector_id: str | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class PersonMatch:
    person_id: str
    account_ids: tuple[str, ...]
    intents: int


@dataclass
class DayContacts:
    """What happened between ``since`` and ``until``: sends by (channel, jurisdiction), gate
    decisions that held an intent back by (event, reason), deferred intents by (channel,
    reason), opt-outs by channel, and the per-intent rows the CSV download lists."""

    sent: Counter[tuple[str, str]]
    held: Counter[tuple[str, str]]
    deferred: Counter[tuple[str, str]]
    opt_outs: Counter[str]
    rows: list[dict[str, Any]]


class ConsoleStore(LedgerCore):
    """The console's reads and its users (see the module docstring)."""

    @classmethod
    def open(cls, url: str) -> ConsoleStore:
        """Connect to ``url`` without migrating (`dunning db upgrade` does)."""
        return cls(engines.make_engine(url, application_name="dunning-console"))

    # --- users --------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: str,
        password_hash: str,
        *,
        now: datetime,
        replace: bool,
        collector_id: str | None = None,
    ) -> bool:
        """Create the user, or with ``replace`` set a new role and password (and enable it);
        returns True when the user was new. ConfigError when it exists and not ``replace``.
        ``collector_id`` links a ``collector`` login to its collector (the caller checks it)."""
        now = utc(now)
        with self._tx(what=f"saving console user {name}") as conn:
            found = conn.scalar(select(console_users.c.name).where(console_users.c.name == name))
            if found is not None and not replace:
                raise ConfigError(
                    f"console user {name} exists; add --replace to set a new role and password"
                )
            if found is None:
                conn.execute(
                    insert(console_users).values(
                        name=name,
                        role=role,
                        password_hash=password_hash,
                        created_at=now,
                        updated_at=now,
                        collector_id=collector_id,
                    )
                )
                return True
            conn.execute(
                update(console_users)
                .where(console_users.c.name == name)
                .values(
                    role=role,
                    password_hash=password_hash,
                    updated_at=now,
                    disabled_at=None,
                    collector_id=collector_id,
                )
            )
            return False

    def disable_user(self, name: str, *, now: datetime) -> bool:
        with self._tx(what=f"disabling console user {name}") as conn:
            done = conn.execute(
                update(console_users)
                .where(console_users.c.name == name, console_users.c.disabled_at.is_(None))
                .values(disabled_at=utc(now), updated_at=utc(now))
            )
        return bool(done.rowcount)

    def get_user(self, name: str) -> ConsoleUser | None:
        with self._tx(read=True, what="reading console users") as conn:
            row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
        return None if row is None else _user(row)

    def list_users(self) -> list[ConsoleUser]:
        with self._tx(read=True, what="reading console users") as conn:
            rows = conn.execute(select(console_users).order_by(console_users.c.name)).all()
        return [_user(row) for row in rows]

    def console_audit(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest audit records written by the console, newest first."""
        query = (
            select(audit.c.at, audit.c.intent_id, audit.c.event, audit.c.detail)
            .where(audit.c.event.like("console_%"))
            .order_by(audit.c.id.desc())
            .limit(limit)
        )
        with self._tx(read=True, what="reading the audit log") as conn:
            rows = conn.execute(query).all()
        return [
            {"at": at, "intent_id": intent_id, "event": event, "detail": _json(detail)}
            for at, intent_id, event, detail in rows
        ]

    # --- people -------------------------------------------------------------------------------

    def find_people(self, kind: SearchKind, value: str) -> list[PersonMatch]:
        """People whose account id, person id, phone or email is exactly ``value`` (already
        normalised by the caller)."""
        with self._tx(read=True, what="searching people") as conn:
            if kind == "account":
                people = set(
                    conn.scalars(
                        select(intents.c.person_id).where(intents.c.account_id == value).distinct()
                    )
                )
            elif kind == "person":
                people = {value}
            elif kind == "phone":
                people = set(
                    conn.scalars(
                        select(attempts.c.person_id).where(attempts.c.phone == value).distinct()
                    )
                )
                people |= set(
                    conn.scalars(
                        select(inbound_messages.c.person_id)
                        .where(inbound_messages.c.from_phone == value)
                        .where(inbound_messages.c.person_id.is_not(None))
                        .distinct()
                    )
                )
            else:
                people = _people_by_email(conn, value)
            return _summarise(conn, sorted(people)[:_MATCH_LIMIT])

    def person_intents(self, person_id: str) -> list[dict[str, Any]]:
        """Every intent of ``person_id``, newest first, with its encoded body (for rendering)."""
        query = (
            select(intents)
            .where(intents.c.person_id == person_id)
            .order_by(intents.c.created_at.desc())
        )
        with self._tx(read=True, what="reading a person's intents") as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # --- today and rates ----------------------------------------------------------------------

    def day_contacts(self, *, since: datetime, until: datetime) -> DayContacts:
        since, until = utc(since), utc(until)
        day = DayContacts(Counter(), Counter(), Counter(), Counter(), [])
        with self._tx(read=True, what="reading today's contacts") as conn:
            sent = conn.execute(
                select(
                    attempts.c.intent_id,
                    attempts.c.channel,
                    intents.c.jurisdiction,
                    attempts.c.finished_at,
                    attempts.c.template,
                )
                .join(intents, intents.c.intent_id == attempts.c.intent_id)
                .where(attempts.c.outcome == "sent")
                .where(attempts.c.finished_at >= since, attempts.c.finished_at < until)
                .order_by(attempts.c.finished_at)
            ).all()
            for intent_id, channel, jurisdiction, at, template in sent:
                day.sent[(channel, jurisdiction)] += 1
                day.rows.append(_row(at, intent_id, channel, jurisdiction, "sent", template or ""))
            held = conn.execute(
                select(
                    audit.c.at,
                    audit.c.intent_id,
                    audit.c.event,
                    audit.c.rule_id,
                    intents.c.channel,
                    intents.c.jurisdiction,
                )
                .join(intents, intents.c.intent_id == audit.c.intent_id)
                .where(audit.c.event.in_(_HELD_EVENTS))
                .where(audit.c.at >= since, audit.c.at < until)
                .order_by(audit.c.at)
            ).all()
            for at, intent_id, event, rule_id, channel, jurisdiction in held:
                day.held[(event, rule_id or "-")] += 1
                day.rows.append(_row(at, intent_id, channel, jurisdiction, event, rule_id or ""))
            deferred = conn.execute(
                select(intents.c.channel, intents.c.last_error)
                .where(intents.c.state == "deferred")
                .where(intents.c.updated_at >= since, intents.c.updated_at < until)
            ).all()
            for channel, reason in deferred:
                day.deferred[(channel, (reason or "-")[:120])] += 1
            opt_outs = conn.execute(
                select(inbound_messages.c.channel, func.count())
                .where(inbound_messages.c.kind == "opt_out")
                .where(inbound_messages.c.received_at >= since)
                .where(inbound_messages.c.received_at < until)
                .group_by(inbound_messages.c.channel)
            ).all()
            for channel, n in opt_outs:
                day.opt_outs[channel] += int(n)
        day.rows.sort(key=lambda r: r["at"])
        return day

    def recent_rates(self, *, until: datetime, minutes: int) -> dict[str, dict[str, list[int]]]:
        """Per channel, sends and deliveries in each of the last ``minutes`` minutes before
        ``until``, oldest first: ``{"sms": {"sent": [...], "delivered": [...]}}``."""
        until = utc(until)
        since = until - timedelta(minutes=minutes)

        def bucket(at: datetime) -> int:
            return min(int((utc(at) - since).total_seconds() // 60), minutes - 1)

        series: dict[str, dict[str, list[int]]] = {}

        def add(channel: str, what: str, at: datetime) -> None:
            per = series.setdefault(channel, {"sent": [0] * minutes, "delivered": [0] * minutes})
            per[what][bucket(at)] += 1

        with self._tx(read=True, what="reading recent sends") as conn:
            for channel, at in conn.execute(
                select(attempts.c.channel, attempts.c.finished_at)
                .where(attempts.c.outcome == "sent")
                .where(attempts.c.finished_at >= since, attempts.c.finished_at < until)
            ):
                add(channel, "sent", at)
            for channel, at in conn.execute(
                select(receipts.c.channel, receipts.c.received_at)
                .where(receipts.c.status.in_(_DELIVERED))
                .where(receipts.c.received_at >= since, receipts.c.received_at < until)
            ):
                add(channel, "delivered", at)
        return series


def _row(
    at: datetime, intent_id: str, channel: str, jurisdiction: str, what: str, why: str
) -> dict[str, Any]:
    return {
        "at": at,
        "intent_id": intent_id,
        "channel": channel,
        "jurisdiction": jurisdiction,
        "outcome": what,
        "detail": why,
    }


def _user(row: Any) -> ConsoleUser:
    return ConsoleUser(
        row.name, row.role, row.password_hash, row.created_at, row.disabled_at, row.collector_id
    )


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def _people_by_email(conn: Any, email: str) -> set[str]:
    # The body is JSON with the address as a string value: narrow by text, then confirm by
    # decoding so the match is exact (a longer address containing this one is not a match).
    needle = json.dumps(email)
    people: set[str] = set()
    for person_id, body in conn.execute(
        select(intents.c.person_id, intents.c.body).where(intents.c.body.contains(needle))
    ):
        try:
            recipient = json.loads(body).get("recipient") or {}
        except (ValueError, AttributeError):
            continue
        stored = recipient.get("email") if isinstance(recipient, dict) else None
        if isinstance(stored, str) and stored.strip().lower() == email:
            people.add(person_id)
    return people


def _summarise(conn: Any, people: list[str]) -> list[PersonMatch]:
    if not people:
        return []
    found: dict[str, tuple[set[str], int]] = {}
    for person_id, account_id in conn.execute(
        select(intents.c.person_id, intents.c.account_id).where(intents.c.person_id.in_(people))
    ):
        accounts, n = found.get(person_id, (set(), 0))
        accounts.add(account_id)
        found[person_id] = (accounts, n + 1)
    return [
        PersonMatch(person_id, tuple(sorted(found[person_id][0])), found[person_id][1])
        for person_id in people
        if person_id in found
    ]
