"""Plain INSERTs for the hot paths (event ingestion, execution start).

The ORM's unit of work, and even its bulk INSERT, cost a few hundred
microseconds of Python per statement; an event that starts an execution
writes three rows. These helpers send one driver-level INSERT per table with
the statement text built once per shape. They bypass ORM events and Python
side defaults: callers pass every value the row needs (server defaults still
apply to the columns they leave out).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from models.base import Base


def insert_rows(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys) in the session's transaction; returns the
    `returning` columns of each inserted row (in no guaranteed order)."""
    if not rows:
        return []
    table = cast(Table, model.__table__)
    columns = tuple(rows[0])
    json_columns = frozenset(c for c in columns if isinstance(table.c[c].type, JSONB))
    sql = _statement(table.name, columns, json_columns, len(rows), returning)
    params = {
        f"{column}_{index}": json.dumps(row[column]) if column in json_columns else row[column]
        for index, row in enumerate(rows)
        for column in columns
    }
    result = session.connection().exec_driver_sql(sql, params)
    return [tuple(row) for row in result] if returning else []


@lru_cache(maxsize=64)
def _statement(
    table: str,
    columns: tuple[str, ...],
    json_columns: frozenset[str],
    count: int,
    returning: tuple[str, ...],
) -> str:
    def placeholder(column: str, index: int) -> str:
        cast = "::jsonb" if column in json_columns else ""
        return f"%({column}_{index})s{cast}"

    values = ", ".join(
        "(" + ", ".join(placeholder(column, index) for column in columns) + ")"
        for index in range(count)
    )
    # Identifiers come from the model's own table and column names (insert_rows
    # looks each one up), never from input; values are bound parameters.
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"  # noqa: S608
    if returning:
        sql += " RETURNING " + ", ".join(returning)
    return sql
