"""covering indexes for analytics

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Analytics read every execution (and step run) of an organization in a time
window, but only a handful of narrow columns. With these columns INCLUDEd in
the (organization_id, created_at) index, Postgres answers from the index alone
(index-only scans) instead of reading the wide rows with their pinned
definitions and contexts. Measured with bench/analytics.py (100k executions).

Built CONCURRENTLY, outside the migration transaction, so that an existing
installation keeps accepting writes while the indexes build.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXECUTIONS_INDEX = "ix_executions_org_created_analytics"
EXECUTIONS_INCLUDE = [
    "id",
    "workflow_id",
    "status",
    "result",
    "error_type",
    "duration_ms",
    "completed_at",
]
STEP_RUNS_INDEX = "ix_step_runs_org_created_analytics"
STEP_RUNS_INCLUDE = ["execution_id", "step_id", "step_type", "status", "attempt", "duration_ms"]


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            EXECUTIONS_INDEX,
            "executions",
            ["organization_id", "created_at"],
            postgresql_include=EXECUTIONS_INCLUDE,
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            STEP_RUNS_INDEX,
            "step_runs",
            ["organization_id", "created_at"],
            postgresql_include=STEP_RUNS_INCLUDE,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            STEP_RUNS_INDEX, table_name="step_runs", postgresql_concurrently=True, if_exists=True
        )
        op.drop_index(
            EXECUTIONS_INDEX, table_name="executions", postgresql_concurrently=True, if_exists=True
        )
