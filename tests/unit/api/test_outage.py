"""Which errors are outages of a dependency (503, retry) and which are not (api.outage)."""

from __future__ import annotations

import kombu.exceptions
import psycopg2
import pytest
import redis.exceptions
from sqlalchemy import exc as sa_exc

from api.outage import unavailable_dependency


class _Driver(psycopg2.OperationalError):
    """A psycopg2 error with the SQLSTATE the server sent (pgcode is read-only)."""

    def __init__(self, message: str, pgcode: str | None) -> None:
        super().__init__(message)
        self._code = pgcode

    @property
    def pgcode(self) -> str | None:  # type: ignore[override]
        return self._code


def _operational(pgcode: str | None, message: str = "boom") -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, _Driver(message, pgcode))


@pytest.mark.parametrize(
    "error",
    [
        _operational(None, "connection to server at 127.0.0.1 port 5432 failed: refused"),
        _operational(None, "server closed the connection unexpectedly"),
        _operational("57P01", "terminating connection due to administrator command"),
        _operational("57P03", "the database system is starting up"),
        _operational("08006"),
        _operational("53300", "too many connections"),
        sa_exc.InterfaceError("SELECT 1", {}, psycopg2.InterfaceError("connection already closed")),
        sa_exc.DisconnectionError("pooled connection failed its ping"),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
)
def test_a_lost_or_refused_database_connection_is_an_outage(error: Exception) -> None:
    assert unavailable_dependency(error) == "database"


def test_a_statement_error_on_an_invalidated_connection_is_an_outage() -> None:
    error = sa_exc.DatabaseError(
        "SELECT 1", {}, psycopg2.DatabaseError("lost"), connection_invalidated=True
    )
    assert unavailable_dependency(error) == "database"


@pytest.mark.parametrize(
    "error",
    [
        _operational("57014", "canceling statement due to statement timeout"),
        _operational("40P01", "deadlock detected"),
        sa_exc.IntegrityError("INSERT", {}, psycopg2.IntegrityError("duplicate key")),
        sa_exc.DataError("SELECT", {}, psycopg2.DataError("invalid input syntax")),
        ValueError("a bug"),
        redis.exceptions.ResponseError("WRONGTYPE"),
    ],
)
def test_errors_about_the_statement_or_our_code_are_not_outages(error: Exception) -> None:
    assert unavailable_dependency(error) is None


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    ],
)
def test_a_redis_connection_failure_is_an_outage(error: Exception) -> None:
    assert unavailable_dependency(error) == "redis"


def test_a_broker_connection_failure_is_an_outage() -> None:
    assert unavailable_dependency(kombu.exceptions.OperationalError("refused")) == "broker"


def test_an_outage_is_found_behind_the_errors_raised_from_it() -> None:
    wrapped = RuntimeError("the rate limiter failed")
    wrapped.__cause__ = redis.exceptions.ConnectionError("refused")
    assert unavailable_dependency(wrapped) == "redis"
