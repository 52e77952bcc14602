"""SQLAlchemy and Redis hooks that feed the database and redis metric families.

Shared by both composition roots (the API and the Celery worker), so it lives
below them; it only observes, never changes behaviour.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

from models import driver
from models.prepared import prepared_sql
from monitoring import metrics

_TABLE_AFTER = {
    "SELECT": re.compile(r"\bFROM\s+\"?([a-z_][a-z0-9_]*)", re.IGNORECASE),
    "INSERT": re.compile(r"\bINTO\s+\"?([a-z_][a-z0-9_]*)", re.IGNORECASE),
    "UPDATE": re.compile(r"^\s*UPDATE\s+\"?([a-z_][a-z0-9_]*)", re.IGNORECASE),
    "DELETE": re.compile(r"\bFROM\s+\"?([a-z_][a-z0-9_]*)", re.IGNORECASE),
}
_FIRST_WRITE = re.compile(r"\b(UPDATE|INSERT|DELETE)\b", re.IGNORECASE)
# Table names seen in statements are bounded to the schema: anything else is "other".
_known_tables: set[str] = set()


# Every statement is classified after it runs; the texts repeat (compiled and
# prepared SQL), so the regex work is done once per text.
@lru_cache(maxsize=1024)
def classify(statement: str) -> tuple[str, str]:
    """(query_type, table) with bounded values: unknown tables become "other"."""
    words = statement.lstrip().split(None, 1)
    verb = words[0].upper() if words else ""
    if verb == "EXECUTE" and len(words) > 1:  # models.prepared: classify the prepared SQL
        statement = prepared_sql(words[1].split("(", 1)[0])
        words = statement.split(None, 1)
        verb = words[0].upper() if words else ""
    if verb == "WITH":  # data-modifying CTEs (models.writer): named by the first write
        write = _FIRST_WRITE.search(statement)
        verb = write.group(1).upper() if write else "SELECT"
        statement = statement[write.start() :] if write else statement
    if verb not in _TABLE_AFTER:
        return ("other", "other")
    match = _TABLE_AFTER[verb].search(statement)
    table = match.group(1).lower() if match else "other"
    if _known_tables and table not in _known_tables:
        table = "other"
    return (verb.lower(), table)


def instrument_db_engine(db_engine: Engine, known_tables: frozenset[str] = frozenset()) -> None:
    if known_tables:
        _known_tables.update(known_tables | {"alembic_version"})
        classify.cache_clear()  # answers given before these tables were known
    pool = db_engine.pool
    size = getattr(pool, "size", lambda: 0)() + max(getattr(pool, "_max_overflow", 0), 0)
    metrics.set_db_pool_size(size)
    metrics.preinitialise_connection_metrics(("postgres",))
    metrics.preinitialise_error_counters(REDIS_OPERATIONS)

    @event.listens_for(db_engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("iw_query_started", []).append(time.perf_counter())

    @event.listens_for(db_engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info.get("iw_query_started")
        if started:
            query_type, table = classify(statement)
            metrics.record_db_query(query_type, table, time.perf_counter() - started.pop())

    @event.listens_for(db_engine, "handle_error")
    def _error(context: Any) -> None:
        started = context.connection.info.get("iw_query_started") if context.connection else None
        if started:
            started.pop()
        query_type, _ = classify(context.statement or "")
        metrics.record_db_query_error(query_type, type(context.original_exception).__name__)
        if context.is_disconnect:
            metrics.record_db_connection_failure("postgres")

    def _driver_statement(statement: str, seconds: float, error: DBAPIError | None) -> None:
        query_type, table = classify(statement)
        if error is None:
            metrics.record_db_query(query_type, table, seconds)
            return
        metrics.record_db_query_error(query_type, type(error.orig).__name__)
        if error.connection_invalidated:
            metrics.record_db_connection_failure("postgres")

    # Statements sent on the driver's cursor (models.driver) fire no cursor events.
    driver.observe(db_engine, _driver_statement)

    @event.listens_for(pool, "checkout")
    def _checkout(*args: Any) -> None:
        metrics.record_db_checkout()

    @event.listens_for(pool, "checkin")
    def _checkin(*args: Any) -> None:
        metrics.record_db_checkin()


# The commands the platform's own Redis client issues (the limiter and Celery use their own).
REDIS_OPERATIONS = ("ping", "llen", "get", "set", "exists", "delete", "expire")


class InstrumentedRedis(redis.Redis):
    """redis.Redis that times every command and counts failures."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        operation = str(args[0]).lower() if args else "unknown"
        started = time.perf_counter()
        try:
            return super().execute_command(*args, **options)
        except redis.ConnectionError:
            metrics.record_redis_connection_failure()
            metrics.record_redis_error(operation)
            raise
        except redis.RedisError:
            metrics.record_redis_error(operation)
            raise
        finally:
            metrics.record_redis_operation(operation, time.perf_counter() - started)
            pool = self.connection_pool
            in_use = getattr(pool, "_in_use_connections", None)
            if in_use is not None:
                metrics.set_redis_connections_active(len(in_use))


def instrumented_redis(url: str, **kwargs: Any) -> redis.Redis:
    return InstrumentedRedis.from_url(url, **kwargs)
