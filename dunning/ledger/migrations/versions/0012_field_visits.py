"""Field visits: collectors, visit tasks, visit outcomes and compliance incidents.

The tables are defined in ``dunning/ledger/visit_schema.py``; docs/visits.md describes them.

Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "collectors",
        sa.Column("collector_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("credential_no", sa.String(64), nullable=False),
        sa.Column("credential_expires", sa.Date, nullable=False),
        sa.Column("training_expires", sa.Date, nullable=False),
        sa.Column("territory", sa.String(64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("retired_at", _TZ),
    )
    op.create_index("ix_collectors_territory", "collectors", ["territory"])
    op.create_table(
        "visit_tasks",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("debt_id", sa.String(128), nullable=False),
        sa.Column("jurisdiction", sa.String(8), nullable=False),
        sa.Column("territory", sa.String(200), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("latitude", sa.String(32)),
        sa.Column("longitude", sa.String(32)),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("window_opens_at", _TZ, nullable=False),
        sa.Column("window_closes_at", _TZ, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("brief", sa.Text, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
    )
    op.create_index("ix_visit_tasks_state_territory", "visit_tasks", ["state", "territory"])
    op.create_index("ix_visit_tasks_state_closes", "visit_tasks", ["state", "window_closes_at"])
    op.create_table(
        "visit_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(128), unique=True),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("arrived_at", _TZ, nullable=False),
        sa.Column("departed_at", _TZ, nullable=False),
        sa.Column("collectors", sa.Text, nullable=False),
        sa.Column("id_shown", sa.Boolean, nullable=False),
        sa.Column("entered", sa.Boolean, nullable=False),
        sa.Column("entry_consent", sa.Boolean, nullable=False),
        sa.Column("people", sa.Text, nullable=False),
        sa.Column("recording_sha256", sa.String(64)),
        sa.Column("recording_started_at", _TZ),
        sa.Column("recording_ended_at", _TZ),
        sa.Column("promise_date", sa.Date),
        sa.Column("promise_amount", sa.String(32)),
        sa.Column("detail", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("recorded_at", _TZ, nullable=False),
    )
    op.create_index("ix_visit_outcomes_task", "visit_outcomes", ["task_id"])
    op.create_table(
        "compliance_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("intent_id", sa.String(64)),
        sa.Column("task_id", sa.String(64)),
        sa.Column("outcome_id", sa.Integer),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_index("ix_compliance_incidents_at", "compliance_incidents", ["at"])


def downgrade() -> None:
    op.drop_index("ix_compliance_incidents_at", table_name="compliance_incidents")
    op.drop_table("compliance_incidents")
    op.drop_index("ix_visit_outcomes_task", table_name="visit_outcomes")
    op.drop_table("visit_outcomes")
    op.drop_index("ix_visit_tasks_state_closes", table_name="visit_tasks")
    op.drop_index("ix_visit_tasks_state_territory", table_name="visit_tasks")
    op.drop_table("visit_tasks")
    op.drop_index("ix_collectors_territory", table_name="collectors")
    op.drop_table("collectors")
