"""The field-visit tables (migration 0012), on the ledger's one MetaData.

``collectors``: the people a visit task may be assigned to, with their credential and training
expiry and their territory. ``visit_tasks``: one task per visit intent (``task_id`` is the
intent id), where it is, the local window it must be visited in, and its team. ``visit_outcomes``:
what the team reported, one row per report (``event_id`` de-duplicates a field-service system's
retries). ``compliance_incidents``: a rule an outcome broke, with the rule's id.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Index, Integer, String, Table, Text

from dunning.ledger.schema import UTCDateTime, metadata

__all__ = ["collectors", "compliance_incidents", "visit_outcomes", "visit_tasks"]

collectors = Table(
    "collectors",
    metadata,
    Column("collector_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("credential_no", String(64), nullable=False),
    Column("credential_expires", Date, nullable=False),
    Column("training_expires", Date, nullable=False),
    Column("territory", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("retired_at", UTCDateTime()),
    Index("ix_collectors_territory", "territory"),
)

visit_tasks = Table(
    "visit_tasks",
    metadata,
    Column("task_id", String(64), primary_key=True),  # the visit intent's id
    Column("account_id", String(128), nullable=False),
    Column("person_id", String(128), nullable=False),
    Column("debt_id", String(128), nullable=False),
    Column("jurisdiction", String(8), nullable=False),
    Column("territory", String(200), nullable=False),  # as the book's column
    Column("address", Text, nullable=False),
    Column("latitude", String(32)),
    Column("longitude", String(32)),
    Column("timezone", String(64), nullable=False),
    Column("window_opens_at", UTCDateTime(), nullable=False),
    Column("window_closes_at", UTCDateTime(), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # waiting, assigned, visited, expired
    Column("reason", Text),  # why it waits or expired
    Column("team", Text, nullable=False),  # JSON list of collector ids
    Column("brief", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_visit_tasks_state_territory", "state", "territory"),
    Index("ix_visit_tasks_state_closes", "state", "window_closes_at"),
)

visit_outcomes = Table(
    "visit_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("event_id", String(128), unique=True),  # null: typed by a person, not a system
    Column("outcome", String(24), nullable=False),
    Column("arrived_at", UTCDateTime(), nullable=False),
    Column("departed_at", UTCDateTime(), nullable=False),
    Column("collectors", Text, nullable=False),  # JSON list of collector ids on site
    Column("id_shown", Boolean, nullable=False),
    Column("entered", Boolean, nullable=False),
    Column("entry_consent", Boolean, nullable=False),
    Column("people", Text, nullable=False),  # JSON list of the roles spoken to
    Column("recording_sha256", String(64)),
    Column("recording_started_at", UTCDateTime()),
    Column("recording_ended_at", UTCDateTime()),
    Column("promise_date", Date),
    Column("promise_amount", String(32)),
    Column("detail", Text),  # JSON: workplace and notice facts
    Column("source", String(16), nullable=False),  # cli, webhook, console
    Column("recorded_at", UTCDateTime(), nullable=False),
    Index("ix_visit_outcomes_task", "task_id"),
)

compliance_incidents = Table(
    "compliance_incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("intent_id", String(64)),
    Column("task_id", String(64)),
    Column("outcome_id", Integer),
    Column("rule_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", Text, nullable=False),  # the rule's legal source, as the pack states it
    Index("ix_compliance_incidents_at", "at"),
)
