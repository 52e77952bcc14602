"""The API's pool pings only suspect connections (idle long, or the server spoke),
and replaces dead ones before a request meets them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from models.db import ping_suspect_connections


def _engine(database_url: str, idle_seconds: float) -> Engine:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    ping_suspect_connections(engine, idle_seconds=idle_seconds)
    return engine


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database_url: str, pid: int) -> None:
    killer = create_engine(database_url)
    with killer.connect() as connection:
        # With a timeout, pg_terminate_backend waits until the backend is gone.
        gone = connection.execute(
            text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
        ).scalar_one()
    killer.dispose()
    assert gone


def _last_statement_after_checkout(engine: Engine, database_url: str) -> str:
    """Use the pooled connection once, check it out again without running anything,
    and read what its backend last ran."""
    pid = _backend_pid(engine)
    observer = create_engine(database_url)
    try:
        with engine.connect(), observer.connect() as connection:
            return str(
                connection.execute(
                    text("SELECT query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                ).scalar_one()
            )
    finally:
        observer.dispose()


@pytest.fixture
def busy_engine(database_url: str) -> Iterator[Engine]:
    """Connections are never idle long enough to be pinged for their age."""
    engine = _engine(database_url, idle_seconds=60.0)
    yield engine
    engine.dispose()


def test_a_connection_killed_between_uses_is_replaced_before_use(
    busy_engine: Engine, database_url: str
) -> None:
    first_pid = _backend_pid(busy_engine)
    _terminate(database_url, first_pid)

    # Handing out the dead connection would raise OperationalError here.
    second_pid = _backend_pid(busy_engine)

    assert second_pid != first_pid


def test_a_healthy_busy_connection_is_not_pinged(busy_engine: Engine, database_url: str) -> None:
    # The pool's reset on check-in, not a "SELECT 1" from a ping at check-out.
    assert _last_statement_after_checkout(busy_engine, database_url) == "ROLLBACK"


def test_a_connection_idle_for_long_is_pinged(database_url: str) -> None:
    engine = _engine(database_url, idle_seconds=0.0)
    try:
        assert _last_statement_after_checkout(engine, database_url) == "SELECT 1"
    finally:
        engine.dispose()
