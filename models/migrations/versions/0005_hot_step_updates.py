"""lighter writes per step: HOT updates of executions, no duplicate indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Every step updates its execution row (context, current step, version,
heartbeat). Postgres can make that a heap-only-tuple (HOT) update, which
writes no index entries, only when no indexed column changes and the page has
room. `heartbeat_at` changed on every step and was indexed, so each step wrote
a new entry into every index of `executions`. The sweeper and the stuck gauge
only look at active executions, which the partial `ix_executions_deadline`
index already lists (its `deadline_at` keeps its value from step to step), so
the heartbeat index goes. `executions` keeps 20% of each page free for the new
row versions (fillfactor 80; it applies to pages written from now on).

`ix_executions_org_created` and `ix_step_runs_org_created` had the same keys as
the covering analytics indexes of 0003, which serve every query they served:
they only cost an extra index write per execution and per step run.

Measured on this machine (an UPDATE of the step's shape, 12,000 times): 0 of
~11,900 updates were HOT before, ~10,000 after; the database backend's CPU per
update fell by 8-13%.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('pending', 'running')"


def upgrade() -> None:
    op.execute("ALTER TABLE executions SET (fillfactor = 80)")
    with op.get_context().autocommit_block():
        for index, table in (
            ("ix_executions_heartbeat", "executions"),
            ("ix_executions_org_created", "executions"),
            ("ix_step_runs_org_created", "step_runs"),
        ):
            op.drop_index(index, table_name=table, postgresql_concurrently=True, if_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_step_runs_org_created",
            "step_runs",
            ["organization_id", "created_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            "ix_executions_org_created",
            "executions",
            ["organization_id", "created_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.create_index(
            "ix_executions_heartbeat",
            "executions",
            ["heartbeat_at"],
            postgresql_where=sa.text(ACTIVE),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
    op.execute("ALTER TABLE executions RESET (fillfactor)")
