"""Database engine, sessions and the unit of work. Nothing is built at import time."""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from models.audit_chain import link_new_entries
from models.config import normalize_database_url

# A pooled connection is pinged (one round trip) before use only when it looks
# suspect: idle for longer than this, or with bytes waiting on its socket. An
# idle connection has nothing to read unless the server spoke first, which is
# what a terminated backend or a database shutdown does (its FATAL message and
# EOF arrive on every connection). So a busy process skips the ping, and a
# restart is still noticed before a request meets the dead connection.
PING_AFTER_IDLE_SECONDS = 2.0


def make_db_engine(
    database_url: str,
    *,
    pool_size: int = 5,
    application_name: str = "iw",
    autocommit: bool = False,
    ping_when_suspect: bool = True,
    statement_timeout_ms: int | None = None,
) -> Engine:
    """`autocommit`: a separate pool whose connections stay in autocommit, for single
    statements that need no transaction. Switching a pooled connection in and out of
    autocommit (`execution_options(isolation_level=...)`) costs psycopg2 a round trip
    each way, more than the statement it is for. `ping_when_suspect`: see
    ping_suspect_connections. `statement_timeout_ms`: Postgres' statement_timeout for
    every connection, set when it connects (no `SET` round trip per use)."""
    connect_args: dict[str, Any] = {"application_name": application_name, "connect_timeout": 5}
    if statement_timeout_ms is not None:
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    db_engine = create_engine(
        normalize_database_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=connect_args,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    if ping_when_suspect:
        ping_suspect_connections(db_engine, PING_AFTER_IDLE_SECONDS)
    return db_engine


def ping_suspect_connections(db_engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling (SQLAlchemy's checkout-event recipe), limited to
    suspect connections: a failed ping raises DisconnectionError, on which the pool
    replaces the connection and checks out again."""

    @event.listens_for(db_engine, "checkin")
    def _mark_idle(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(db_engine, "checkout")
    def _ping_if_suspect(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None:
            return  # just connected
        idle_too_long = time.monotonic() - idle_since >= idle_seconds
        if not idle_too_long and not _server_spoke(dbapi_connection):
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not dbapi_connection.autocommit:
                # The ping opened a transaction. Left open, it would outlive the
                # checkout (SQLAlchemy's reset on check-in is skipped once its own
                # transaction ended) and make the next isolation-level or read-only
                # switch fail: "set_session cannot be used inside a transaction".
                dbapi_connection.rollback()
        except Exception as exc:  # any failure: the connection is unusable
            raise DisconnectionError("pooled connection failed its ping") from exc


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether the idle connection's socket has input (no query is outstanding)."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True  # closed or unusable: let the ping decide
    return bool(readable)


def make_session_factory(db_engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=db_engine, expire_on_commit=False, autoflush=True)
    # Audit entries join their organization's hash chain in the flush that writes them.
    event.listen(factory, "before_flush", link_new_entries)
    return factory


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
