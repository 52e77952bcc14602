"""Plain INSERTs for the hot paths (event ingestion, execution start).

The ORM's unit of work, and even its bulk INSERT, cost a few hundred
microseconds of Python per statement; an event that starts an execution
writes three rows. InsertBatch sends one driver-level INSERT per table, the
INSERTs of all tables in one round trip, with each statement's text built
once per shape. It bypasses ORM events and Python side defaults: callers pass
every value the row needs (server defaults still apply to the columns they
leave out).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from models.base import Base
from models.driver import run_driver_sql


class JsonText(str):
    """A JSON column's value that is already JSON text (sent as it is)."""


class InsertBatch:
    """Plain INSERTs into several tables sent in one round trip (one driver call, the
    statements joined by ';'), in the order added. Postgres runs them in order and
    stops at the first error, so a later row never lands without the earlier ones.
    Only the last statement's RETURNING rows come back (psycopg2 keeps the last
    result of a multi-statement call), so only the last may ask for them."""

    def __init__(self) -> None:
        self._statements: list[str] = []
        self._params: dict[str, Any] = {}
        self._returning = False

    def __bool__(self) -> bool:
        return bool(self._statements)

    def add(
        self,
        model: type[Base],
        rows: Sequence[Mapping[str, Any]],
        *,
        returning: tuple[str, ...] = (),
    ) -> None:
        if self._returning:
            raise ValueError("only the last INSERT of a batch can return rows")
        if not rows:
            return
        table = cast(Table, model.__table__)
        columns = tuple(rows[0])
        json_columns = frozenset(c for c in columns if isinstance(table.c[c].type, JSONB))
        prefix = f"s{len(self._statements)}_"
        self._statements.append(
            _statement(table.name, columns, json_columns, len(rows), returning, prefix)
        )
        self._params.update(
            {
                f"{prefix}{column}_{index}": (
                    _json(row[column]) if column in json_columns else row[column]
                )
                for index, row in enumerate(rows)
                for column in columns
            }
        )
        self._returning = bool(returning)

    def send(self, session: Session | Connection) -> list[tuple[Any, ...]]:
        """Run the INSERTs in the session's transaction, or on the connection (in
        autocommit, as their own transaction); the batch is empty afterwards."""
        if not self._statements:
            return []
        sql, params, returning = ";".join(self._statements), self._params, self._returning
        self._statements, self._params, self._returning = [], {}, False
        connection = session.connection() if isinstance(session, Session) else session
        rows = run_driver_sql(connection, sql, params)
        return rows.all() if returning else []


def _json(value: Any) -> str:
    return value if isinstance(value, JsonText) else json.dumps(value)


@lru_cache(maxsize=64)
def _statement(  # noqa: PLR0917 - positional: an lru_cache key
    table: str,
    columns: tuple[str, ...],
    json_columns: frozenset[str],
    count: int,
    returning: tuple[str, ...],
    prefix: str,
) -> str:
    def placeholder(column: str, index: int) -> str:
        cast = "::jsonb" if column in json_columns else ""
        return f"%({prefix}{column}_{index})s{cast}"

    values = ", ".join(
        "(" + ", ".join(placeholder(column, index) for column in columns) + ")"
        for index in range(count)
    )
    # Identifiers come from the model's own table and column names (InsertBatch.add
    # looks each one up), never from input; values are bound parameters.
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"  # noqa: S608
    if returning:
        sql += " RETURNING " + ", ".join(returning)
    return sql
