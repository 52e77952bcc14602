"""the audit log becomes a hash chain per organization; executions notify their changes

Revision ID: 0007_i17
Revises: 0006
Create Date: 2026-12-06

Each entry gets its position in its organization's chain, the previous
entry's hash and its own (models.audit_chain). Existing entries are chained
here in (created_at, id) order, the order they were listed in until now. The
hash is the one definition in models.audit_chain: changing it would invalidate
every stored chain, so this migration and the verifier share it.

A committed change of an execution's version, status or current step sends a
NOTIFY on channel `iw_executions` (delivered only once its transaction commits)
with the few columns the live streams filter and order by (api/streams/feed.py);
the streams read anything else from the row. The step path itself is unchanged.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from models.audit_chain import GENESIS_HASH, HASHED_COLUMNS, entry_hash

revision: str = "0007_i17"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
NOTIFY_CHANNEL = "iw_executions"

_NOTIFY_FUNCTION = f"""
CREATE FUNCTION iw_notify_execution() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', json_build_object(
        'id', NEW.id, 'org', NEW.organization_id, 'workflow_id', NEW.workflow_id,
        'version', NEW.version, 'status', NEW.status, 'step', NEW.current_step_id,
        'at', NEW.updated_at)::text);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.add_column("audit_logs", sa.Column("chain_position", sa.BigInteger(), nullable=True))
    op.add_column("audit_logs", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_logs", sa.Column("entry_hash", sa.String(length=64), nullable=True))
    _chain_existing_entries(op.get_bind())
    for name in ("chain_position", "prev_hash", "entry_hash"):
        op.alter_column("audit_logs", name, nullable=False)
    op.create_index(
        "uq_audit_logs_org_chain_position",
        "audit_logs",
        ["organization_id", "chain_position"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.execute(_NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER iw_executions_notify_insert AFTER INSERT ON executions"
        " FOR EACH ROW EXECUTE FUNCTION iw_notify_execution()"
    )
    # Heartbeats and context-only writes change none of these: no notification.
    op.execute(
        "CREATE TRIGGER iw_executions_notify_update AFTER UPDATE ON executions FOR EACH ROW"
        " WHEN (OLD.version IS DISTINCT FROM NEW.version"
        " OR OLD.status IS DISTINCT FROM NEW.status"
        " OR OLD.current_step_id IS DISTINCT FROM NEW.current_step_id)"
        " EXECUTE FUNCTION iw_notify_execution()"
    )


def _chain_existing_entries(connection: Any) -> None:
    """One pass over the table in chain order (streamed), updates in batches."""
    columns = ", ".join(c for c in HASHED_COLUMNS if c not in {"chain_position", "prev_hash"})
    rows = connection.execute(
        sa.text(
            f"SELECT {columns} FROM audit_logs"  # noqa: S608 - fixed column names
            " ORDER BY organization_id NULLS FIRST, created_at, id"
        ),
        execution_options={"stream_results": True, "yield_per": _BATCH},
    )
    update = sa.text(
        "UPDATE audit_logs SET chain_position = :position, prev_hash = :prev,"
        " entry_hash = :hash WHERE id = CAST(:id AS uuid)"
    )
    chain: object = object()  # no chain yet
    position, previous = 0, GENESIS_HASH
    batch: list[dict[str, Any]] = []
    for row in rows.mappings():
        if row["organization_id"] != chain:
            chain, position, previous = row["organization_id"], 0, GENESIS_HASH
        position += 1
        content = {**row, "chain_position": position, "prev_hash": previous}
        previous = entry_hash(content)
        batch.append({"position": position, "prev": content["prev_hash"], "hash": previous})
        batch[-1]["id"] = str(row["id"])
        if len(batch) >= _BATCH:
            connection.execute(update, batch)
            batch = []
    if batch:
        connection.execute(update, batch)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS iw_executions_notify_update ON executions")
    op.execute("DROP TRIGGER IF EXISTS iw_executions_notify_insert ON executions")
    op.execute("DROP FUNCTION IF EXISTS iw_notify_execution()")
    op.drop_index("uq_audit_logs_org_chain_position", table_name="audit_logs")
    op.drop_column("audit_logs", "entry_hash")
    op.drop_column("audit_logs", "prev_hash")
    op.drop_column("audit_logs", "chain_position")
