"""Database engine, sessions and the unit of work. Nothing is built at import time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

# A pooled connection idle for longer than this is pinged before use. A busy
# process (connections checked in and out within milliseconds) skips the ping,
# a round trip per checkout; after a database restart the first checkout that
# finds a dead connection fails once and SQLAlchemy invalidates the whole pool.
PING_AFTER_IDLE_SECONDS = 2.0


def make_db_engine(
    database_url: str, *, pool_size: int = 5, application_name: str = "iw"
) -> Engine:
    db_engine = create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"application_name": application_name, "connect_timeout": 5},
    )
    ping_idle_connections(db_engine, PING_AFTER_IDLE_SECONDS)
    return db_engine


def ping_idle_connections(db_engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling (SQLAlchemy's checkout-event recipe), limited to
    connections that sat idle: a failed ping raises DisconnectionError, on which the
    pool replaces the connection and checks out again."""

    @event.listens_for(db_engine, "checkin")
    def _mark_idle(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(db_engine, "checkout")
    def _ping_if_idle(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:  # any failure: the connection is unusable
            raise DisconnectionError("idle connection failed its ping") from exc


def make_session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=db_engine, expire_on_commit=False, autoflush=True)


class UnitOfWork:
    """One transaction. Repositories never commit; `commit()` is the one place that does.

    Callbacks registered with `after_commit` run only once the commit succeeded,
    which is where dispatches to the broker belong.
    """

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory
        self._after_commit: list[Callable[[], None]] = []
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self._after_commit = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    def commit(self) -> None:
        self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


@contextmanager
def session_scope(session_factory: Callable[[], Session]) -> Iterator[Session]:
    """A read-mostly session that is always closed; the caller commits if it writes."""
    session = session_factory()
    try:
        yield session
    finally:
        session.close()
