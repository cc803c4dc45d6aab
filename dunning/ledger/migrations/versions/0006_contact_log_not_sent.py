"""contact_log leaves out attempts that failed before the provider (outcome ``not_sent``).

A template that does not render or a provider host that refuses the connection never reached
the person; the caps do not count such an attempt, and the view says what the caps count.

Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"

_COLUMNS = (
    "SELECT intent_id, attempt_no, person_id, debt_id, channel, phone, dial_outcome, "
    "started_at AS at, outcome FROM attempts "
)


def upgrade() -> None:
    op.execute("DROP VIEW contact_log")
    op.execute(
        "CREATE VIEW contact_log AS " + _COLUMNS + "WHERE outcome NOT IN ('released', 'not_sent')"
    )


def downgrade() -> None:
    op.execute("DROP VIEW contact_log")
    op.execute("CREATE VIEW contact_log AS " + _COLUMNS + "WHERE outcome NOT IN ('released')")
