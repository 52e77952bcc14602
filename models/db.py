"""Database engine, sessions and the unit of work. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


def make_db_engine(
    database_url: str, *, pool_size: int = 5, application_name: str = "iw"
) -> Engine:
    return create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"application_name": application_name, "connect_timeout": 5},
    )


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
