"""Server-side prepared statements for the fixed SQL of the step path.

Statements this small cost Postgres more to plan than to run: planning the
step's lock query (its step_runs join) and its four writes took about 40% of
the database's CPU per step (bench/step_profile.py), on the same cores as the
workers. A prepared statement is planned once per connection (Postgres keeps
a generic plan after five executions).

psycopg2 has no protocol-level prepared statements, so these are SQL-level
PREPARE / EXECUTE, which last as long as the database session (they need
session pooling: behind a transaction-pooling proxy, do not use them). The
names prepared on a connection are remembered in its SQLAlchemy `info`, which
the pool clears when it replaces the connection. PREPARE is not undone by a
rollback, so the first use on a connection sends `DEALLOCATE ALL` and every
registered PREPARE ahead of its EXECUTEs (safe to repeat after a failure half
way), and any database error makes the connection start over next time; a
statement registered later (models.writer compiles one per shape of transition)
is prepared on a connection ahead of its first EXECUTE there.
An engine built with `DB_PREPARED_STATEMENTS=false` (see `send_plain_sql`)
sends the same statements unprepared, for transaction-pooling proxies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

from models.driver import DriverRows, run_driver_sql

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_INFO_KEY = "iw_prepared_statements"
_PLAIN_KEY = "iw_plain_sql"
_REGISTRY: dict[str, PreparedStatement] = {}


class PreparedStatement:
    """One statement written with psycopg2's `%(name)s` placeholders, prepared under `name`
    (parameter types are inferred by Postgres: cast where the context does not say)."""

    def __init__(self, name: str, sql: str) -> None:
        if name in _REGISTRY:
            raise ValueError(f"prepared statement {name!r} defined twice")
        parameters: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in parameters:
                parameters.append(match.group(1))
            return f"${parameters.index(match.group(1)) + 1}"

        body = _PLACEHOLDER.sub(number, sql.strip().rstrip(";"))
        if "%" in body:  # psycopg2 would read it as a placeholder in the PREPARE text
            raise ValueError(f"prepared statement {name!r}: write no literal % in its SQL")
        self.name = name
        self.plain_sql = sql.strip().rstrip(";")
        self.sql = body
        self.prepare_sql = f"PREPARE {name} AS {body}"
        arguments = ", ".join(f"%({parameter})s" for parameter in parameters)
        self.execute_sql = f"EXECUTE {name}({arguments})"
        _REGISTRY[name] = self


def prepared_sql(name: str) -> str:
    """The SQL prepared under `name` ("" if none): tasks.instrumentation labels an
    EXECUTE with the query type and table of the statement it runs."""
    statement = _REGISTRY.get(name)
    return statement.sql if statement is not None else ""


def execute_prepared(
    connection: Connection, statements: Sequence[PreparedStatement], params: Mapping[str, Any]
) -> DriverRows:
    """Run the statements in one round trip, on the driver's cursor (models.driver);
    the rows are the last statement's."""
    if connection.info.get(_PLAIN_KEY):
        plain = ";".join(statement.plain_sql for statement in statements)
        return run_driver_sql(connection, plain, params)
    prepared: set[str] = connection.info.setdefault(_INFO_KEY, set())
    sql = ";".join(statement.execute_sql for statement in statements)
    preparing = [statement for statement in statements if statement.name not in prepared]
    if not prepared:  # a new connection, or one whose statements are unknown after an error
        preparing = list(_REGISTRY.values())
        sql = ";".join(["DEALLOCATE ALL", *(s.prepare_sql for s in preparing), sql])
    elif preparing:  # statements registered since (models.writer builds one per shape)
        sql = ";".join([*(s.prepare_sql for s in preparing), sql])
    try:
        result = run_driver_sql(connection, sql, params)
    except DBAPIError:
        prepared.clear()  # whatever this connection holds now, prepare afresh next time
        raise
    # Only what this call prepared: statements registered since (a module imported
    # later) are not on this connection yet.
    prepared.update(statement.name for statement in preparing)
    return result


def send_plain_sql(db_engine: Engine) -> None:
    """Make execute_prepared send plain statements on this engine's connections (for a
    transaction-pooling proxy, where a PREPARE may land on another server session)."""

    @event.listens_for(db_engine, "connect")
    def _mark_plain(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_PLAIN_KEY] = True
