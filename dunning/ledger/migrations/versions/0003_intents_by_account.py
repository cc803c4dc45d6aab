"""Index intents by account: the evaluator reads each account's earlier outcomes.

Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.create_index("ix_intents_account", "intents", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_intents_account", table_name="intents")
