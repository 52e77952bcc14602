"""The Alembic history: one linear chain that builds the models' schema from empty."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

import models
from models.migration import (
    MIGRATIONS_DIR,
    alembic_config,
    create_database_if_missing,
    drop_database,
)


def test_history_is_one_linear_chain() -> None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert len(revisions) >= 2
    for revision in revisions:
        assert not revision.is_merge_point


def test_upgrade_from_empty_matches_the_models_and_downgrades_cleanly(database_url: Any) -> None:
    url = database_url + "_fresh"
    create_database_if_missing(url)
    db_engine = create_engine(url)
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        with db_engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), models.Base.metadata)
            assert diff == []
            roles = connection.execute(text("SELECT count(*) FROM roles")).scalar()
            assert roles == 5
        command.downgrade(config, "base")
        with db_engine.connect() as connection:
            tables = connection.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar()
            assert tables == 1  # only alembic_version is left
        command.upgrade(config, "head")
    finally:
        db_engine.dispose()
        drop_database(url)


def test_every_tenant_table_carries_organization_id() -> None:
    global_tables = {
        "organizations",
        "users",
        "roles",
        "permissions",
        "role_permissions",
        "login_attempts",
        "refresh_tokens",
    }
    for name, table in models.Base.metadata.tables.items():
        if name in global_tables:
            continue
        assert "organization_id" in table.columns, name
