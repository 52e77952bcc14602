"""A plain `postgresql://` or `postgres://` DATABASE_URL works everywhere it is read.

SQLAlchemy 2.1 maps the bare `postgresql://` scheme to psycopg 3, which the
project does not install, and knows no `postgres://`; every reader maps both to
psycopg2 (models.config.normalize_database_url).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.app import create_app
from models.config import load_settings
from models.migration import drop_database
from tasks.runtime import Runtime
from tests.conftest import SERVER_URL

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def plain_url() -> Iterator[str]:
    """A database that does not exist yet, named with the bare `postgresql://` scheme."""
    name = f"iw_test_plain_{os.getpid()}_{secrets.token_hex(3)}"
    url = make_url(SERVER_URL).set(drivername="postgresql", database=name)
    rendered = url.render_as_string(hide_password=False)
    assert rendered.startswith("postgresql://")
    try:
        yield rendered
    finally:
        drop_database(rendered)


def _run(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_make_ups_database_step_and_alembic_take_plain_urls(plain_url: str) -> None:
    created = _run([sys.executable, "-m", "models.manage", "init"], plain_url)
    assert created.returncode == 0, created.stderr
    assert "database ready" in created.stdout
    heroku_style = "postgres://" + plain_url.removeprefix("postgresql://")
    alembic = _run([sys.executable, "-m", "alembic", "upgrade", "head"], heroku_style)
    assert alembic.returncode == 0, alembic.stderr


def test_the_api_and_the_workers_connect_with_a_plain_url(
    plain_url: str, base_settings: dict[str, Any]
) -> None:
    assert _run([sys.executable, "-m", "models.manage", "init"], plain_url).returncode == 0
    app = create_app({**base_settings, "database_url": plain_url})
    try:
        response = app.test_client().get("/ready")
        assert response.status_code == 200, response.json
    finally:
        app.extensions["iw"].dispose()
    runtime = Runtime(load_settings({"DATABASE_URL": plain_url, "APP_ENV": "test"}))
    try:
        with runtime.db_engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
        assert runtime.db_engine.dialect.driver == "psycopg2"
    finally:
        runtime.dispose()
