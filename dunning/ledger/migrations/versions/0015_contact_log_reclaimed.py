"""contact_log leaves out attempts a reclaim replaced (outcome ``reclaimed``).

An attempt left in ``sending`` by a crash is closed as ``reclaimed`` when the intent is claimed
again; the new attempt carries the contact (an intent is one contact), so the view, like the
caps, counts it once.

Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"

_COLUMNS = (
    "SELECT intent_id, attempt_no, person_id, debt_id, channel, phone, dial_outcome, "
    "started_at AS at, outcome FROM attempts "
)


def upgrade() -> None:
    op.execute("DROP VIEW contact_log")
    op.execute(
        "CREATE VIEW contact_log AS "
        + _COLUMNS
        + "WHERE outcome NOT IN ('released', 'not_sent', 'reclaimed')"
    )


def downgrade() -> None:
    op.execute("DROP VIEW contact_log")
    op.execute(
        "CREATE VIEW contact_log AS " + _COLUMNS + "WHERE outcome NOT IN ('released', 'not_sent')"
    )
