"""Suppressions with bounds: when one starts to apply and when it stops.

A promise to pay holds until the end of its day; a debt is time-barred from the day after its
statute of limitations. Both columns are null for every suppression recorded before.

Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(sa.Column("starts_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_column("until")
        batch.drop_column("starts_at")
