"""one index less to write per step run: the trace reads by the unique key

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Every step inserts a step-run row, and every index of `step_runs` takes an
entry. `ix_step_runs_execution_started` (execution_id, started_at) served only
the trace of one execution, which the unique key's leading `execution_id`
finds as well; the trace's few rows are then sorted by `started_at` in memory.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_step_runs_execution_started",
            table_name="step_runs",
            postgresql_concurrently=True,
            if_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_step_runs_execution_started",
            "step_runs",
            ["execution_id", "started_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
