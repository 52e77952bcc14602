"""Fixed SQL of the hot paths sent on the DBAPI cursor, under SQLAlchemy's contract.

`Connection.exec_driver_sql` costs about 100 µs of Python per statement over
the driver's own call (an execution context, a result's metadata, event
dispatch): `bench/step_profile.py --via-task` spent 23% of a step's CPU there
and the events endpoint 15% (py-spy). The step path and event ingestion send
only hand-written statements whose rows are read by position, which need none
of it: `run_driver_sql` sends them on the connection's DBAPI cursor and keeps
what callers rely on from SQLAlchemy:

- errors are SQLAlchemy's (`IntegrityError`, `OperationalError`, ...), as
  exec_driver_sql raises them;
- a lost connection is invalidated, and the rest of its pool with it (the
  server went away for all of them), as SQLAlchemy does on a disconnect;
- on a connection outside autocommit a SQLAlchemy transaction is begun first,
  so the caller's commit or rollback reaches the statement;
- statement observers (`observe`: the metrics of tasks.instrumentation, the
  statement counts of tests and benchmarks) see every statement, its duration
  and its error, since SQLAlchemy's cursor events do not fire here.

Rows come back as the driver gives them (tuples, the types psycopg2 parses),
exactly what exec_driver_sql returns for textual SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIModule
from sqlalchemy.exc import DBAPIError

# (statement, seconds, error or None); called after every driver-level statement. The
# error is SQLAlchemy's: `.orig` is the driver's, `.connection_invalidated` a disconnect.
StatementObserver = Callable[[str, float, DBAPIError | None], None]

_observers: WeakKeyDictionary[Engine, list[StatementObserver]] = WeakKeyDictionary()


def observe(db_engine: Engine, observer: StatementObserver) -> None:
    _observers.setdefault(db_engine, []).append(observer)


def stop_observing(db_engine: Engine, observer: StatementObserver) -> None:
    observers = _observers.get(db_engine, [])
    if observer in observers:
        observers.remove(observer)


class DriverRows:
    """The rows of the last statement sent (psycopg2 keeps only its result)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: Sequence[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        """The first column of the first row (None without rows)."""
        return self._rows[0][0] if self._rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


def run_driver_sql(connection: Connection, sql: str, params: Mapping[str, Any]) -> DriverRows:
    """Send `sql` (psycopg2 `%(name)s` placeholders, several statements joined by ';'
    allowed) in one driver call on this connection."""
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:
        raise RuntimeError("run_driver_sql needs a connection holding a DBAPI connection")
    if not dbapi_connection.autocommit and not connection.in_transaction():
        connection.begin()  # what exec_driver_sql's autobegin would have done
    observers = _observers.get(connection.engine, ())
    started = time.perf_counter()
    cursor = None
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall() if cursor.description is not None else []
        rowcount = cursor.rowcount
    except connection.dialect.loaded_dbapi.Error as exc:
        error = _translated(connection, cursor, sql, params, exc)
        for observer in observers:
            observer(sql, time.perf_counter() - started, error)
        raise error from exc
    finally:
        if cursor is not None:
            cursor.close()  # psycopg2: no round trip, and no error on a lost connection
    for observer in observers:
        observer(sql, time.perf_counter() - started, None)
    return DriverRows(rows, rowcount)


def _translated(
    connection: Connection,
    cursor: Any,
    sql: str,
    params: Mapping[str, Any],
    exc: DBAPIModule.Error,
) -> DBAPIError:
    """SQLAlchemy's exception for the driver's, after what SQLAlchemy does on a lost
    connection."""
    dialect = connection.dialect
    disconnect = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
    if disconnect and not connection.invalidated:
        connection.invalidate(exc)
        # The server closed every connection of the pool, not only this one.
        connection.engine.dispose()
    # For a DBAPI error (what run_driver_sql catches) this is always a DBAPIError.
    return cast(
        DBAPIError,
        DBAPIError.instance(
            sql,
            dict(params),
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect,
            dialect=dialect,
        ),
    )
