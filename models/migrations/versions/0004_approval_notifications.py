"""approval decision notifications owed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

`approvals.notify_due_at` is set in the transaction that approves, rejects or
expires an approval and cleared once the decision's notifications went out
(tasks.approvals). A decision committed while the broker or the worker was
down is therefore still notified later, by the approval expiry job. The
partial index keeps that job's scan to the few rows that owe a notification.
Existing rows start with nothing owed: decisions made before this revision are
not announced after the fact.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_approvals_notify_due"


def upgrade() -> None:
    op.add_column("approvals", sa.Column("notify_due_at", sa.DateTime(timezone=True)))
    op.create_index(
        INDEX,
        "approvals",
        ["notify_due_at"],
        postgresql_where=sa.text("notify_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        INDEX, table_name="approvals", postgresql_where=sa.text("notify_due_at IS NOT NULL")
    )
    op.drop_column("approvals", "notify_due_at")
