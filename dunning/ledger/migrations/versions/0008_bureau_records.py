"""``bureau_records``: the account's snapshot per credit-bureau reporting cycle.

Written by the bureau step's worker, read by ``dunning bureau export`` and ``dunning report
bureau`` (docs/bureau.md).

Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    op.create_table(
        "bureau_records",
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("cycle", sa.String(7), primary_key=True),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("intent_id", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(8), nullable=False),
        sa.Column("status_code", sa.String(2), nullable=False),
        sa.Column("days_past_due", sa.Integer, nullable=False),
        sa.Column("current_balance", sa.String(32), nullable=False),
        sa.Column("amount_past_due", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("first_delinquency", sa.Date),
        sa.Column("payment_history", sa.String(24), nullable=False),
        sa.Column("compliance_condition", sa.String(2), nullable=False),
        sa.Column("delete_reason", sa.String(16)),
        sa.Column("notice_due_by", sa.DateTime(timezone=True)),
        sa.Column("furnished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_bureau_records_cycle", "bureau_records", ["cycle", "account_id"])


def downgrade() -> None:
    op.drop_index("ix_bureau_records_cycle", table_name="bureau_records")
    op.drop_table("bureau_records")
