"""Initial ledger: intents, attempts, receipts, suppressions, audit and the contact_log view.

Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "intents",
        sa.Column("intent_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("debt_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("jurisdiction", sa.String(8), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("step", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sending_since", sa.DateTime(timezone=True)),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("provider_ref", sa.String(128)),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_intents_state_updated", "intents", ["state", "updated_at"])
    op.create_index("ix_intents_person", "intents", ["person_id"])
    op.create_index("ix_intents_provider_ref", "intents", ["provider_ref"])

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("intent_id", sa.String(64), nullable=False),
        sa.Column("attempt_no", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("provider_ref", sa.String(128)),
        sa.Column("error_class", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("provider_code", sa.String(32)),
        sa.Column("detail", sa.Text),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("debt_id", sa.String(128), nullable=False),
        sa.Column("template", sa.String(128)),
        sa.Column("phone", sa.String(32)),
        sa.Column("dial_outcome", sa.String(16)),
    )
    op.create_index("ix_attempts_person_started", "attempts", ["person_id", "started_at"])
    op.create_index("ix_attempts_intent", "attempts", ["intent_id", "attempt_no"])
    op.create_index("ix_attempts_provider_ref", "attempts", ["provider_ref"])

    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("intent_id", sa.String(64)),
        sa.Column("provider_ref", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw", sa.Text),
        sa.Column("applied", sa.Boolean, nullable=False),
    )
    op.create_index("ix_receipts_intent", "receipts", ["intent_id"])
    op.create_index("ix_receipts_provider_ref", "receipts", ["provider_ref"])

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16)),
        sa.Column("debt_id", sa.String(128)),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_suppressions_person", "suppressions", ["person_id"])

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("intent_id", sa.String(64)),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(64)),
        sa.Column("pack_version", sa.String(32)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_intent", "audit", ["intent_id"])
    op.create_index("ix_audit_at", "audit", ["at"])

    # What the caps count: every attempt that reached, or may have reached, the provider.
    op.execute(
        "CREATE VIEW contact_log AS "
        "SELECT intent_id, attempt_no, person_id, debt_id, channel, phone, dial_outcome, "
        "started_at AS at, outcome FROM attempts WHERE outcome NOT IN ('released')"
    )


def downgrade() -> None:
    op.execute("DROP VIEW contact_log")
    for table in ("audit", "suppressions", "receipts", "attempts", "intents"):
        op.drop_table(table)
