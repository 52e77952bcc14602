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


def _spoke_at_checkout(engine: Engine, database_url: str) -> bool:
    """Use the pooled connection once, then check it out again without running anything:
    whether its backend ran a statement during that checkout (a ping)."""
    pid = _backend_pid(engine)
    observer = create_engine(database_url)
    activity = text("SELECT state_change > :mark FROM pg_stat_activity WHERE pid = :pid")
    try:
        with observer.connect() as watching:
            mark = watching.execute(text("SELECT clock_timestamp()")).scalar_one()
            watching.rollback()  # a new transaction sees a new snapshot of pg_stat_activity
            with engine.connect():
                spoke = watching.execute(activity, {"mark": mark, "pid": pid}).scalar_one()
            return bool(spoke)
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
    assert not _spoke_at_checkout(busy_engine, database_url)


def test_a_connection_idle_for_long_is_pinged(database_url: str) -> None:
    engine = _engine(database_url, idle_seconds=0.0)
    try:
        assert _spoke_at_checkout(engine, database_url)
    finally:
        engine.dispose()


def test_a_pinged_connection_can_still_switch_to_a_read_only_snapshot(database_url: str) -> None:
    """The analytics reports' checkout: before the ping ended its transaction, this
    raised "set_session cannot be used inside a transaction" (a 500 in CI)."""
    engine = _engine(database_url, idle_seconds=0.0)
    try:
        _backend_pid(engine)
        with engine.connect() as connection:
            reading = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            assert reading.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
    finally:
        engine.dispose()
