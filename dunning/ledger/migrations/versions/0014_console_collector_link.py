"""A console login of role ``collector`` names the collector it is: ``console_users.collector_id``.

Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"


def upgrade() -> None:
    with op.batch_alter_table("console_users") as batch:
        batch.add_column(sa.Column("collector_id", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("console_users") as batch:
        batch.drop_column("collector_id")
