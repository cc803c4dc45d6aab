"""Inbound messages (opt-outs, agent queue, confirmations) and the attempts-by-phone index.

Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(128), nullable=False, unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("keyword", sa.String(32)),
        sa.Column("possible_opt_out", sa.Boolean, nullable=False),
        sa.Column("from_phone", sa.String(32)),
        sa.Column("to_phone", sa.String(32)),
        sa.Column("person_id", sa.String(128)),
        sa.Column("intent_id", sa.String(64)),
        sa.Column("body", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmation", sa.String(16)),
        sa.Column("confirmation_ref", sa.String(64)),
        sa.Column("handled_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_inbound_person", "inbound_messages", ["person_id"])
    op.create_index("ix_inbound_kind_received", "inbound_messages", ["kind", "received_at"])
    # An inbound STOP names a phone number: find who we contacted there without a scan.
    op.create_index("ix_attempts_phone", "attempts", ["phone"])
    op.create_index("ix_receipts_received", "receipts", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_receipts_received", table_name="receipts")
    op.drop_index("ix_attempts_phone", table_name="attempts")
    op.drop_table("inbound_messages")
