"""The transition writer: one statement records a transition, or nothing.

A transition is everything one transaction records for one execution: the
execution's new columns (what engine.lifecycle decided, plus the context),
applied by compare-and-set on the execution's `version` (and, for a row read
without a lock, its `xmin`: any write at all since the read); the ticket it
consumed, deleted; and the rows it adds or changes beside the execution (step
runs, tickets, approvals, waits). They are data-modifying CTEs of one
statement that all hang off the compare-and-set, so the statement writes all
of it or, when the row changed since it was read, nothing (`StaleRow`). It is
the same statement whether the row was read under a lock or not: under the
lock the compare-and-set cannot fail.

The SQL is built from the models' table metadata with SQLAlchemy Core,
compiled once per shape (which columns change, which rows are added or
changed) and sent as a prepared statement (models.prepared), so a column added
to a model reaches it without a second edit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import (
    CTE,
    Column,
    Connection,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from models.base import Base
from models.execution import DispatchOutbox, Execution
from models.prepared import PreparedStatement, execute_prepared
from models.rows import JsonText

_EXECUTIONS = cast(Table, Execution.__table__)
_OUTBOX = cast(Table, DispatchOutbox.__table__)
# Taken from the execution row the statement moved, never from the caller.
_FROM_EXECUTION = ("organization_id", "execution_id")
_DIALECT = postgresql.psycopg2.dialect()  # type: ignore[no-untyped-call]


class StaleRow(Exception):
    """The execution row changed since it was read: nothing was written."""


@dataclass(frozen=True)
class Transition:
    execution_id: uuid.UUID
    version: int  # the version the transition was decided on
    changes: Mapping[str, Any]  # executions columns to set (may be empty)
    outbox_id: int | None = None  # the ticket consumed
    row_xmin: str | None = None  # when the row was read without a lock
    # Rows to add: (table, columns); their execution and organization are the moved row's.
    inserts: Sequence[tuple[Table, Mapping[str, Any]]] = field(default_factory=tuple)
    # Rows to change: (table, primary key, columns).
    updates: Sequence[tuple[Table, Any, Mapping[str, Any]]] = field(default_factory=tuple)


@dataclass(frozen=True)
class Written:
    row_xmin: str  # the row's new xmin (the next step's snapshot names it)
    # The id the database chose for each inserted row that came without one, in order.
    inserted_ids: list[Any]


def write(connection: Connection, transition: Transition) -> Written:
    """Write the transition in one round trip (StaleRow when the row changed)."""
    statement = _statement(
        tuple(sorted(transition.changes)),
        transition.outbox_id is not None,
        transition.row_xmin is not None,
        tuple((table.name, tuple(sorted(row))) for table, row in transition.inserts),
        tuple((table.name, tuple(sorted(values))) for table, _, values in transition.updates),
    )
    row = execute_prepared(connection, [statement], _params(transition)).first()
    if row is None:
        raise StaleRow(str(transition.execution_id))
    return Written(row_xmin=row[0], inserted_ids=list(row[1:]))


def _params(transition: Transition) -> dict[str, Any]:
    params: dict[str, Any] = {
        "execution_id": transition.execution_id,
        "expected_version": transition.version,
        "outbox_id": transition.outbox_id,
        "row_xmin": transition.row_xmin,
    }
    params.update(_values("set", _EXECUTIONS, transition.changes))
    for index, (table, row) in enumerate(transition.inserts):
        params.update(_values(f"add{index}", table, row))
    for index, (table, key, values) in enumerate(transition.updates):
        params.update(_values(f"upd{index}", table, values))
        params[f"upd{index}__key"] = key
    return params


def _values(prefix: str, table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    json_columns = _json_columns(table.name)
    return {
        f"{prefix}_{name}": _json(value) if name in json_columns else value
        for name, value in row.items()
    }


@cache
def _json_columns(table_name: str) -> frozenset[str]:
    """The table's columns sent as JSON text (looked up once, not per step)."""
    table = _table(table_name)
    return frozenset(c.name for c in table.c if isinstance(c.type, JSONB))


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _json(value: Any) -> str | None:
    if value is None or isinstance(value, JsonText):
        return value
    return json.dumps(value)


def _bound(prefix: str, column: Column[Any]) -> Any:
    """A parameter for `column`, cast to its type (INSERT ... SELECT does not infer it)."""
    return sql_cast(bindparam(f"{prefix}_{column.name}"), column.type)


@lru_cache(maxsize=256)
def _statement(
    changed: tuple[str, ...],
    consumes: bool,
    unlocked: bool,
    inserts: tuple[tuple[str, tuple[str, ...]], ...],
    updates: tuple[tuple[str, tuple[str, ...]], ...],
) -> PreparedStatement:
    moved = _moved(changed, unlocked)
    writes: list[CTE] = []
    if consumes:
        writes.append(
            delete(_OUTBOX)
            .where(_OUTBOX.c.id == bindparam("outbox_id"), exists(select(moved.c.id)))
            .cte("consumed")
        )
    for index, (name, columns) in enumerate(updates):
        writes.append(_update_if_moved(_table(name), f"upd{index}", columns, moved))
    added = [
        _insert_from_moved(_table(name), f"add{index}", columns, moved)
        for index, (name, columns) in enumerate(inserts)
    ]
    chosen = [
        cte.c.id for cte, (_, columns) in zip(added, inserts, strict=True) if "id" not in columns
    ]
    final = select(moved.c.row_xmin, *chosen)
    for cte in [*writes, *added]:
        final = final.add_cte(cte)
    return _prepared(str(final.compile(dialect=_DIALECT)))


def _moved(changed: tuple[str, ...], unlocked: bool) -> CTE:
    """The execution row, compare-and-set: updated when columns change, else only matched."""
    executions = _EXECUTIONS
    guard = [
        executions.c.id == bindparam("execution_id"),
        executions.c.version == bindparam("expected_version"),
    ]
    if unlocked:
        guard.append(literal_column("xmin::text") == sql_cast(bindparam("row_xmin"), Text))
    returned: tuple[Any, ...] = (
        executions.c.id,
        executions.c.organization_id,
        literal_column("xmin::text").label("row_xmin"),
    )
    if not changed:
        return select(*returned).where(*guard).cte("moved")
    return (
        update(executions)
        .where(*guard)
        .values({name: _bound("set", executions.c[name]) for name in changed})
        .returning(*returned)
        .cte("moved")
    )


_BY_SQL: dict[str, PreparedStatement] = {}


def _prepared(sql: str) -> PreparedStatement:
    """One prepared statement per distinct SQL text (two shapes may compile alike)."""
    if sql not in _BY_SQL:
        name = "iw_transition_" + hashlib.blake2b(sql.encode(), digest_size=6).hexdigest()
        _BY_SQL[sql] = PreparedStatement(name, sql)
    return _BY_SQL[sql]


def _insert_from_moved(table: Table, prefix: str, columns: tuple[str, ...], moved: CTE) -> CTE:
    """INSERT of one row whose execution and organization are the moved row's (returning
    its id, which the statement returns when the row came without one)."""
    own = [column for column in columns if column not in _FROM_EXECUTION]
    values = [_bound(prefix, table.c[column]) for column in own]
    source = select(*values, moved.c.organization_id, moved.c.id)
    statement = insert(table).from_select([*own, *_FROM_EXECUTION], source)
    return statement.returning(table.c.id).cte(prefix)


def _update_if_moved(table: Table, prefix: str, columns: tuple[str, ...], moved: CTE) -> CTE:
    """UPDATE of one row by its key, only when the execution row moved."""
    return (
        update(table)
        .where(table.c.id == bindparam(f"{prefix}__key"), exists(select(moved.c.id)))
        .values({column: _bound(prefix, table.c[column]) for column in columns})
        .cte(prefix)
    )
