"""Which errors mean a dependency is down, as opposed to a bug.

A request that meets a lost or refused connection to Postgres, Redis or the
broker is answered 503 with `Retry-After` (api.errors), never 500: the client
may retry. Errors Postgres itself reports about the statement (constraints,
bad input, a cancelled query) are not outages.
"""

from __future__ import annotations

from collections.abc import Iterator

import kombu.exceptions
import redis.exceptions
from sqlalchemy import exc as sa_exc

# Seconds a client is told to wait: a restarted dependency is usually back
# within a few, and the pools reconnect on the next request (models.db).
RETRY_AFTER_SECONDS = 2

# SQLSTATEs of a connection that is gone or cannot be had: class 08 (connection
# exception), admin/crash shutdown and "cannot connect now" (57P01-03), too many
# connections (53300).
_CONNECTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def unavailable_dependency(error: BaseException) -> str | None:
    """The dependency (`database`, `redis` or `broker`) whose lost or refused
    connection `error`, or an error it was raised from, is; None otherwise."""
    for cause in _chain(error):
        if _is_database_connection_error(cause):
            return "database"
        if isinstance(cause, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return "redis"
        if isinstance(cause, kombu.exceptions.OperationalError):
            return "broker"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_database_connection_error(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True  # a dead pooled connection, or no connection free in time
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return False
    # psycopg2 reports a refused, closed or timed-out connection without a SQLSTATE.
    code = getattr(error.orig, "pgcode", None)
    return code is None or code.startswith("08") or code in _CONNECTION_SQLSTATES
