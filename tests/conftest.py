"""Shared fixtures: a throwaway Postgres database and a dedicated Redis DB per run.

TEST_DATABASE_URL names the server (its database part is replaced by a fresh
one); TEST_REDIS_URL names the Redis DB the run owns and flushes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from models.config import normalize_database_url
from tests.support import redis_db_url

SERVER_URL = normalize_database_url(
    os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", redis_db_url(13))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from sqlalchemy.engine import make_url

    from models.migration import create_database_if_missing, drop_database, upgrade_to_head

    name = f"iw_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    create_database_if_missing(url)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def base_settings(database_url: str, redis_url: str) -> dict[str, Any]:
    return {
        "environment": "test",
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret": "test-secret-" + secrets.token_hex(16),
        # Tests register and log in hundreds of users from one address.
        "rate_limit_auth": "100000/minute",
        "rate_limit_default": "100000/second",
        "failed_login_limit": 5,
        "log_level": "WARNING",
        "db_pool_size": 2,
    }


@pytest.fixture(scope="session")
def app(base_settings: dict[str, Any]) -> Iterator[Any]:
    from api.app import create_app

    application = create_app(base_settings)
    yield application
    application.extensions["iw"].dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@contextmanager
def dedicated_database(base_url: str, suffix: str) -> Iterator[str]:
    """A second throwaway database, migrated, for a suite that runs its own workers.

    A running worker and beat act on every row of their database (the relay and
    sweeper are global by design), so a suite that keeps processes alive must not
    share its database with suites that drive steps in process.
    """
    from models.migration import create_database_if_missing, drop_database, upgrade_to_head

    url = base_url + "_" + suffix
    create_database_if_missing(url)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        drop_database(url)
