"""shadow-run reports

Revision ID: 0008_i16_shadow_reports
Revises: 0007_i17
Create Date: 2026-12-06

A shadow run (POST /workflows/{id}/shadow) replays recorded events through a
candidate definition; its report is stored so that a long window can be run by
a worker and read later, page by page. `shadow_differences` keeps one row per
event whose run differs, in replay order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_i16_shadow_reports"
down_revision: str | None = "0007_i17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shadow_reports",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("workflow_row_id", sa.UUID(), nullable=True),
        sa.Column("workflow_id", sa.String(length=100), nullable=False),
        sa.Column("current_definition", postgresql.JSONB(), nullable=False),
        sa.Column("candidate", postgresql.JSONB(), nullable=False),
        sa.Column("selection", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("summary", postgresql.JSONB(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_shadow_reports_organization_id_organizations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_row_id"],
            ["workflows.id"],
            name="fk_shadow_reports_workflow_row_id_workflows",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name="fk_shadow_reports_created_by_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_reports"),
    )
    op.create_index(
        "ix_shadow_reports_org_created", "shadow_reports", ["organization_id", "created_at"]
    )
    op.create_table(
        "shadow_differences",
        sa.Column("report_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("comparison", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["shadow_reports.id"],
            name="fk_shadow_differences_report_id_shadow_reports",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_shadow_differences_organization_id_organizations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", "seq", name="pk_shadow_differences"),
    )


def downgrade() -> None:
    op.drop_table("shadow_differences")
    op.drop_index("ix_shadow_reports_org_created", table_name="shadow_reports")
    op.drop_table("shadow_reports")
