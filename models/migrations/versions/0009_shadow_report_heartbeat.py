"""shadow reports keep a heartbeat and count their runs

Revision ID: 0009_shadow_heartbeat
Revises: 0008_i16_shadow_reports
Create Date: 2026-12-06

A report whose run stopped without finishing (its worker killed with the
message lost, the request answering it inline cut short) stayed `pending` or
`running` for ever. The run now marks `heartbeat_at` when it claims the report
and with each chunk it writes; the sweeper queues a report silent for too long
again, and fails one whose runs stopped `attempts` times (tasks.shadow).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_shadow_heartbeat"
down_revision: str | None = "0008_i16_shadow_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "shadow_reports", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "shadow_reports",
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # Reports queued or running before this revision count from their last claim.
    op.execute("UPDATE shadow_reports SET heartbeat_at = started_at WHERE status = 'running'")
    op.execute("UPDATE shadow_reports SET attempts = 1 WHERE started_at IS NOT NULL")
    op.create_index(
        "ix_shadow_reports_unfinished",
        "shadow_reports",
        ["created_at"],
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("ix_shadow_reports_unfinished", table_name="shadow_reports")
    op.drop_column("shadow_reports", "attempts")
    op.drop_column("shadow_reports", "heartbeat_at")
