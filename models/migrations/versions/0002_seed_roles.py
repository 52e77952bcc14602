"""seed roles and permissions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

The catalogue lives in models.permission; `models.seed.seed_roles` upserts it
(also run by `make up`), so a later change to the catalogue reaches existing
databases without a new migration.
"""

from collections.abc import Sequence

from alembic import op

from models.seed import seed_roles

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    seed_roles(op.get_bind())


def downgrade() -> None:
    op.execute("DELETE FROM role_permissions")
    op.execute("DELETE FROM roles")
    op.execute("DELETE FROM permissions")
