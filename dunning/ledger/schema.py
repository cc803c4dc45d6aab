"""The ledger's tables as SQLAlchemy Core metadata; the migrations create exactly these.

Timestamps are stored in UTC through :class:`UTCDateTime`: aware datetimes in, aware UTC
datetimes out on every backend (SQLite hands back naive values, which are UTC by construction).
JSON payloads are text columns so the same schema runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from dunning.clock import utc

__all__ = [
    "CONTACT_LOG_VIEW_SQL",
    "UTCDateTime",
    "attempts",
    "audit",
    "inbound_messages",
    "intents",
    "metadata",
    "receipts",
    "suppressions",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; naive values are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        as_utc = utc(value)
        # SQLite stores the text without an offset: keep it naive-UTC so text order is time order.
        return as_utc.replace(tzinfo=None) if dialect.name == "sqlite" else as_utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

intents = Table(
    "intents",
    metadata,
    Column("intent_id", String(64), primary_key=True),
    Column("account_id", String(128), nullable=False),
    Column("person_id", String(128), nullable=False),
    Column("debt_id", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("jurisdiction", String(8), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("step", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sending_since", UTCDateTime()),
    Column("published_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("last_error", Text),
    Column("provider_ref", String(128)),
    Column("body", Text, nullable=False),  # the encoded intent, for reconcile and republish
    Index("ix_intents_state_updated", "state", "updated_at"),
    Index("ix_intents_person", "person_id"),
    Index("ix_intents_account", "account_id"),
    Index("ix_intents_provider_ref", "provider_ref"),
)

attempts = Table(
    "attempts",
    metadata,
    # A surrogate key: a released attempt keeps its row and the next claim reuses its number.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("intent_id", String(64), nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("worker", String(128), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    # sending, sent, failed, not_sent (failed before the provider), released, reclaimed
    Column("outcome", String(16), nullable=False),
    Column("provider_ref", String(128)),
    Column("error_class", String(64)),
    Column("reason", Text),
    Column("provider_code", String(32)),
    Column("detail", Text),
    Column("channel", String(16), nullable=False),
    Column("person_id", String(128), nullable=False),
    Column("debt_id", String(128), nullable=False),
    Column("template", String(128)),
    Column("phone", String(32)),
    Column("dial_outcome", String(16)),
    Index("ix_attempts_person_started", "person_id", "started_at"),
    Index("ix_attempts_intent", "intent_id", "attempt_no"),
    Index("ix_attempts_provider_ref", "provider_ref"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("intent_id", String(64)),  # null until matched (a callback may come before the send)
    Column("provider_ref", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("raw", Text),
    Column("applied", Boolean, nullable=False, default=False),
    Index("ix_receipts_intent", "intent_id"),
    Index("ix_receipts_provider_ref", "provider_ref"),
    # One row per provider event, however many copies of the callback arrive at once (0004).
    Index("uq_receipts_event", "channel", "provider_ref", "status", unique=True),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(128), nullable=False),
    Column("channel", String(16)),  # null: every channel
    Column("debt_id", String(128)),  # null: every debt
    Column("reason", String(32), nullable=False),
    Column("source", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("removed_at", UTCDateTime()),
    Column("starts_at", UTCDateTime()),  # null: from created_at
    Column("until", UTCDateTime()),  # null: until removed
    Index("ix_suppressions_person", "person_id"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("intent_id", String(64)),
    Column("event", String(32), nullable=False),
    Column("rule_id", String(64)),
    Column("pack_version", String(32)),
    Column("detail", Text),
    Index("ix_audit_intent", "intent_id"),
    Index("ix_audit_at", "at"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(128), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("kind", String(24), nullable=False),  # opt_out, opt_in, agent, callback_request
    Column("keyword", String(32)),
    Column("possible_opt_out", Boolean, nullable=False, default=False),
    Column("from_phone", String(32)),
    Column("to_phone", String(32)),
    Column("person_id", String(128)),
    Column("intent_id", String(64)),
    Column("body", Text),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("confirmation", String(16)),  # pending, sending, sent, failed; null: none owed
    Column("confirmation_ref", String(64)),
    Column("handled_at", UTCDateTime()),
    Index("ix_inbound_person", "person_id"),
    Index("ix_inbound_kind_received", "kind", "received_at"),
    Index("ix_inbound_from_phone", "from_phone"),  # 0004: the latest STOP or START from a number
)
# Created with inbound_messages (migration 0002), on the tables above.
Index("ix_attempts_phone", attempts.c.phone)
Index("ix_receipts_received", receipts.c.received_at)

#: Every provider attempt that reached (or may have reached) a person: what the caps count.
CONTACT_LOG_VIEW_SQL = (
    "CREATE VIEW contact_log AS "
    "SELECT intent_id, attempt_no, person_id, debt_id, channel, phone, dial_outcome, "
    "started_at AS at, outcome FROM attempts "
    "WHERE outcome NOT IN ('released', 'not_sent', 'reclaimed')"  # 0013: reclaimed
)
