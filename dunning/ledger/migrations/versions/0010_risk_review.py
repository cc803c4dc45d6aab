"""The risk review's tables: ``bucket_history`` (each account's bucket per evaluation day, for
roll rates) and ``promises`` (promises to pay and their outcome).

Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"


def upgrade() -> None:
    op.create_table(
        "bucket_history",
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("segment", sa.String(128), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
    )
    op.create_index("ix_bucket_history_day", "bucket_history", ["day"])
    op.create_table(
        "promises",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("promised_on", sa.Date, nullable=False),
        sa.Column("pay_by", sa.Date, nullable=False),
        sa.Column("amount", sa.Numeric(18, 4)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("intent_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_promises_account", "promises", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_promises_account", table_name="promises")
    op.drop_table("promises")
    op.drop_index("ix_bucket_history_day", table_name="bucket_history")
    op.drop_table("bucket_history")
