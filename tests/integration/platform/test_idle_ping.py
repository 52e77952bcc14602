"""The API's pool pings only connections that sat idle, and replaces dead ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from models.db import ping_idle_connections


@pytest.fixture
def pinged_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    ping_idle_connections(engine, idle_seconds=0.0)
    yield engine
    engine.dispose()


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


def test_a_connection_killed_while_idle_is_replaced_before_use(
    pinged_engine: Engine, database_url: str
) -> None:
    first_pid = _backend_pid(pinged_engine)
    _terminate(database_url, first_pid)

    # Without the ping this checkout would hand out the dead connection and fail.
    second_pid = _backend_pid(pinged_engine)

    assert second_pid != first_pid


def test_a_recently_used_connection_is_not_pinged(database_url: str) -> None:
    # The ping is skipped, so a connection killed since its last use fails the
    # one statement that finds it (and the pool then replaces it).
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    ping_idle_connections(engine, idle_seconds=60.0)
    try:
        first_pid = _backend_pid(engine)
        _terminate(database_url, first_pid)
        with pytest.raises(OperationalError):
            _backend_pid(engine)
        assert _backend_pid(engine) != first_pid
    finally:
        engine.dispose()
