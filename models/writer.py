"""The transition writer: one statement records a step's transition, or nothing.

A step's transition is: the execution's new columns (what engine.lifecycle
decided, plus the context), applied by compare-and-set on the execution's
`version` (and, for a row read without a lock, its `xmin`: any write at all
since the read); the ticket it consumed, deleted; the attempt's step-run row;
the next tickets. They are data-modifying CTEs of one statement that all hang
off the compare-and-set, so the statement writes all of it or, when the row
changed since it was read, nothing (`StaleRow`). It is the same statement
whether the row was read under a lock or not: under the lock the
compare-and-set cannot fail.

The SQL is built from the models' table metadata with SQLAlchemy Core,
compiled once per shape (which columns change, how many tickets) and sent as a
prepared statement (models.prepared), so a column added to a model reaches it
without a second edit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
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
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from models.execution import DispatchOutbox, Execution, StepRun
from models.prepared import PreparedStatement, execute_prepared
from models.rows import JsonText

_EXECUTIONS = cast(Table, Execution.__table__)
_STEP_RUNS = cast(Table, StepRun.__table__)
_OUTBOX = cast(Table, DispatchOutbox.__table__)
# Taken from the execution row the statement moved, never from the caller.
_FROM_EXECUTION = ("organization_id", "execution_id")
# Per table, the columns sent as JSON text (looked up once, not per step).
_JSON_COLUMNS = {
    table.name: frozenset(c.name for c in table.c if isinstance(c.type, JSONB))
    for table in (_EXECUTIONS, _STEP_RUNS, _OUTBOX)
}
_DIALECT = postgresql.psycopg2.dialect()  # type: ignore[no-untyped-call]


class StaleRow(Exception):
    """The execution row changed since it was read: nothing was written."""


@dataclass(frozen=True)
class StepTransition:
    execution_id: uuid.UUID
    version: int  # the version the step ran on
    changes: Mapping[str, Any]  # executions columns to set (the new version among them)
    outbox_id: int | None = None  # the ticket consumed
    row_xmin: str | None = None  # when the row was read without a lock
    step_run: Mapping[str, Any] | None = None  # the attempt's step_runs row
    tickets: Sequence[Mapping[str, Any]] = field(default_factory=tuple)  # dispatch_outbox rows


@dataclass(frozen=True)
class Written:
    row_xmin: str  # the row's new xmin (the next step's snapshot names it)
    ticket_ids: list[int]


def write(connection: Connection, transition: StepTransition) -> Written:
    """Write the transition in one round trip (StaleRow when the row changed)."""
    statement = _statement(
        tuple(sorted(transition.changes)),
        transition.outbox_id is not None,
        transition.row_xmin is not None,
        tuple(sorted(transition.step_run or ())),
        tuple(tuple(sorted(ticket)) for ticket in transition.tickets),
    )
    row = execute_prepared(connection, [statement], _params(transition)).first()
    if row is None:
        raise StaleRow(str(transition.execution_id))
    return Written(row_xmin=row[0], ticket_ids=list(row[1:]))


def _params(transition: StepTransition) -> dict[str, Any]:
    params: dict[str, Any] = {
        "execution_id": transition.execution_id,
        "expected_version": transition.version,
        "outbox_id": transition.outbox_id,
        "row_xmin": transition.row_xmin,
    }
    params.update(_values("set", _EXECUTIONS, transition.changes))
    params.update(_values("run", _STEP_RUNS, transition.step_run or {}))
    for index, ticket in enumerate(transition.tickets):
        params.update(_values(f"ticket{index}", _OUTBOX, ticket))
    return params


def _values(prefix: str, table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    json_columns = _JSON_COLUMNS[table.name]
    return {
        f"{prefix}_{name}": _json(value) if name in json_columns else value
        for name, value in row.items()
    }


def _json(value: Any) -> str | None:
    if value is None or isinstance(value, JsonText):
        return value
    return json.dumps(value)


def _bound(prefix: str, column: Column[Any]) -> Any:
    """A parameter for `column`, cast to its type (INSERT ... SELECT does not infer it)."""
    return sql_cast(bindparam(f"{prefix}_{column.name}"), column.type)


@lru_cache(maxsize=64)
def _statement(
    changed: tuple[str, ...],
    consumes: bool,
    unlocked: bool,
    run_columns: tuple[str, ...],
    tickets: tuple[tuple[str, ...], ...],
) -> PreparedStatement:
    executions = _EXECUTIONS
    guard = [
        executions.c.id == bindparam("execution_id"),
        executions.c.version == bindparam("expected_version"),
    ]
    if unlocked:
        guard.append(literal_column("xmin::text") == sql_cast(bindparam("row_xmin"), Text))
    moved = (
        update(executions)
        .where(*guard)
        .values({name: _bound("set", executions.c[name]) for name in changed})
        .returning(
            executions.c.id,
            executions.c.organization_id,
            literal_column("xmin::text").label("row_xmin"),
        )
        .cte("moved")
    )
    writes: list[CTE] = []
    if consumes:
        writes.append(
            delete(_OUTBOX)
            .where(_OUTBOX.c.id == bindparam("outbox_id"), exists(select(moved.c.id)))
            .cte("consumed")
        )
    if run_columns:
        writes.append(_insert_from_moved(_STEP_RUNS, "run", run_columns, moved, "run"))
    ticket_ctes = [
        _insert_from_moved(_OUTBOX, f"ticket{index}", columns, moved, f"ticket{index}")
        for index, columns in enumerate(tickets)
    ]
    final = select(moved.c.row_xmin, *(ticket.c.id for ticket in ticket_ctes))
    for cte in [*writes, *ticket_ctes]:
        final = final.add_cte(cte)
    return _prepared(str(final.compile(dialect=_DIALECT)))


_BY_SQL: dict[str, PreparedStatement] = {}


def _prepared(sql: str) -> PreparedStatement:
    """One prepared statement per distinct SQL text (two shapes may compile alike)."""
    if sql not in _BY_SQL:
        name = "iw_transition_" + hashlib.blake2b(sql.encode(), digest_size=6).hexdigest()
        _BY_SQL[sql] = PreparedStatement(name, sql)
    return _BY_SQL[sql]


def _insert_from_moved(
    table: Table, prefix: str, columns: tuple[str, ...], moved: CTE, name: str
) -> CTE:
    """INSERT of one row whose execution and organization are the moved row's."""
    own = [column for column in columns if column not in _FROM_EXECUTION]
    values = [_bound(prefix, table.c[column]) for column in own]
    source = select(*values, moved.c.organization_id, moved.c.id)
    statement = insert(table).from_select([*own, *_FROM_EXECUTION], source)
    if table is _OUTBOX:
        statement = statement.returning(table.c.id)
    return statement.cte(name)


# --- changes to a loaded row ---------------------------------------------------------
def write_loaded(session: Session, row: Execution, changes: Mapping[str, Any]) -> None:
    """Write `changes` to an execution row the session holds locked (failures, waits,
    approvals, fan-outs, the operator's controls) through `write`, in the session's
    transaction, and show them on the loaded row; nothing writes an execution row
    another way."""
    if not changes:
        return
    write(session.connection(), StepTransition(row.id, row.version, changes))
    for column, value in changes.items():
        set_committed_value(row, column, value)
