"""The receipts feed's outbox: ``receipt_feed``, one row per receipt the webhook stores.

The row is written in the receipt's own transaction with ``published_at`` NULL and marked once
the broker confirmed the message, so a webhook that dies between answering and publishing
leaves the publication to the next drainer. Receipts stored before this revision get no row:
whether they reached the feed is not known, and a reader catches up on them from the ledger.

Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"

_UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "receipt_feed",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("receipt_id", sa.Integer, nullable=False, unique=True),
        sa.Column("routing_key", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(192), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_receipt_feed_unpublished",
        "receipt_feed",
        ["id"],
        postgresql_where=_UNPUBLISHED,
        sqlite_where=_UNPUBLISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_receipt_feed_unpublished", table_name="receipt_feed")
    op.drop_table("receipt_feed")
