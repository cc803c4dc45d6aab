"""One receipt row per provider event; inbound messages by sender number.

``uq_receipts_event`` (channel, provider_ref, status) makes concurrent copies of one callback
store one row. Copies stored before it existed are folded first: the row kept is an applied one
when there is one, else the first stored, and it stays applied when any copy was.
``ix_inbound_from_phone`` finds the latest STOP or START from a number.

Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"

_EVENT = ("channel", "provider_ref", "status")


def _fold_duplicate_receipts() -> None:
    conn = op.get_bind()
    receipts = sa.table(
        "receipts",
        sa.column("id", sa.Integer),
        sa.column("channel", sa.String),
        sa.column("provider_ref", sa.String),
        sa.column("status", sa.String),
        sa.column("applied", sa.Boolean),
    )
    columns = [receipts.c[name] for name in _EVENT]
    groups = conn.execute(
        sa.select(*columns).group_by(*columns).having(sa.func.count() > 1)
    ).all()
    for group in groups:
        same = [c == value for c, value in zip(columns, group, strict=True)]
        rows = conn.execute(
            sa.select(receipts.c.id, receipts.c.applied).where(*same).order_by(receipts.c.id)
        ).all()
        keep = next((row for row in rows if row.applied), rows[0])
        doomed = [row.id for row in rows if row.id != keep.id]
        conn.execute(sa.delete(receipts).where(receipts.c.id.in_(doomed)))


def upgrade() -> None:
    _fold_duplicate_receipts()
    op.create_index("uq_receipts_event", "receipts", list(_EVENT), unique=True)
    op.create_index("ix_inbound_from_phone", "inbound_messages", ["from_phone"])


def downgrade() -> None:
    op.drop_index("ix_inbound_from_phone", table_name="inbound_messages")
    op.drop_index("uq_receipts_event", table_name="receipts")
