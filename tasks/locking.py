"""The execution row a step reads, as plain values in one round trip.

Every step task starts by reading its execution row (locked FOR UPDATE, or
unlocked for an optimistic attempt) and its attempt's step-run row, if any.
Loading them through the ORM cost more than the rest of the step's Python, so
the row is read with one prepared statement into `LockedExecution`, a plain
value whose fields are the model's columns of the same names: the query and
the message snapshot are built from those fields and the model's metadata, so
a column the step path needs is one field added here.

The pinned definition is read as JSON text and parsed once per process per
distinct text: it never changes for an execution, and executions of one
workflow version share it, so steps after the first skip the parse.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, Text, and_, bindparam, literal_column, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql

from engine.definition import Definition, RunMode
from models.execution import DispatchOutbox, Execution, StepRun
from models.prepared import PreparedStatement, execute_prepared

_EXECUTIONS = cast(Table, Execution.__table__)
_STEP_RUNS = cast(Table, StepRun.__table__)


@dataclass(frozen=True, slots=True)
class LockedExecution:
    """The execution row as a step reads it. Every field but the last two is the
    model's column of that name (`definition` parsed)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    workflow_id: str
    definition: Definition
    status: str
    result: str | None
    trigger_type: str
    context: dict[str, Any]
    current_step_id: str | None
    attempt_group: int
    version: int
    started_at: datetime | None
    running_seconds: float
    deadline_at: datetime | None
    # The row version's transaction id: any write to the row changes it, so a
    # compare-and-set on it sees every change since the read (models.writer).
    row_xmin: str
    # Names the pinned definition's text in a step message's snapshot.
    definition_digest: str

    def is_past_deadline(self, now: datetime) -> bool:
        return self.deadline_at is not None and self.deadline_at <= now


_DERIVED = ("row_xmin", "definition_digest")
# The model's columns the step reads, in the order the query returns them.
COLUMNS = tuple(f.name for f in fields(LockedExecution) if f.name not in _DERIVED)


@dataclass(frozen=True, slots=True)
class RunState:
    """A step-run row as the step path reads it: the attempt's, when one exists (a
    retry, a re-run, a duplicate), or one just recorded."""

    id: uuid.UUID
    status: str
    started_at: datetime | None
    due_at: datetime | None


def _step_read() -> Select[Any]:
    executions, runs = _EXECUTIONS, _STEP_RUNS
    columns = [
        sql_cast(executions.c[name], Text) if name == "definition" else executions.c[name]
        for name in COLUMNS
    ]
    attempt = and_(
        runs.c.execution_id == executions.c.id,
        *(runs.c[key] == bindparam(key) for key in _ATTEMPT_KEY),
    )
    return (
        select(*columns, literal_column("executions.xmin::text"), *(runs.c[n] for n in _RUN))
        .select_from(executions.outerjoin(runs, attempt))
        .where(executions.c.id == bindparam("execution_id"))
    )


_RUN = tuple(f.name for f in fields(RunState))  # the step-run columns read with the row
_ATTEMPT_KEY = ("step_id", "branch_key", "attempt_group", "attempt")
_DIALECT = postgresql.psycopg2.dialect()
_LOCK = PreparedStatement(
    "iw_lock_step", str(_step_read().with_for_update(of=_EXECUTIONS).compile(dialect=_DIALECT))
)
# The same row without the lock, for a step run optimistically.
_READ = PreparedStatement("iw_read_step", str(_step_read().compile(dialect=_DIALECT)))


def lock_execution(
    connection: Connection,
    *,
    execution_id: uuid.UUID,
    step_id: str,
    branch_key: str,
    attempt_group: int,
    attempt: int,
    lock: bool = True,
) -> tuple[LockedExecution, RunState | None] | None:
    """Lock the execution row (None if it is gone) and read the attempt's row with it;
    `lock=False` reads the same without locking."""
    row: Any = execute_prepared(
        connection,
        [_LOCK if lock else _READ],
        {
            "execution_id": execution_id,
            "step_id": step_id,
            "branch_key": branch_key,
            "attempt_group": attempt_group,
            "attempt": attempt,
        },
    ).first()
    if row is None:
        return None
    values = dict(zip(COLUMNS, row, strict=False))
    definition, digest = pinned_with_digest(values["definition"])
    xmin, *run = row[len(COLUMNS) :]
    execution = LockedExecution(
        **{**values, "definition": definition}, row_xmin=xmin, definition_digest=digest
    )
    return execution, None if run[0] is None else RunState(*run)


def pinned_definition(text: str) -> Definition:
    """The parsed definition for this exact JSON text (shared: Definition is frozen)."""
    return pinned_with_digest(text)[0]


@lru_cache(maxsize=256)
def pinned_with_digest(text: str) -> tuple[Definition, str]:
    """The parsed definition and the digest a snapshot names it by."""
    definition = Definition.from_dict(json.loads(text))
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    if len(_by_digest) >= _DIGESTS_KEPT:
        del _by_digest[next(iter(_by_digest))]  # the oldest
    _by_digest[digest] = definition
    return definition, digest


# Definitions this process parsed, by digest, for snapshots (bounded like pinned_with_digest:
# a digest it forgot costs a step one read).
_by_digest: dict[str, Definition] = {}
_DIGESTS_KEPT = 256


# --- snapshots --------------------------------------------------------------------------
# The row as a step's optimistic write left it (or as the API inserted it, for the
# first step: tasks.launch) travels in the next step's message, so that step runs
# without reading it again: its compare-and-set (same version, same xmin) still
# rejects a row that changed since, and then the locked path reads it afresh. Only
# small contexts travel; a message without a snapshot (one the relay re-published,
# a big context) reads the row as before.
SNAPSHOT_MAX_CONTEXT_CHARS = 8192


def snapshot(execution: LockedExecution, context_json: str) -> dict[str, Any] | None:
    """The message form of the row (`context_json`: its context, as JSON text)."""
    if len(context_json) > SNAPSHOT_MAX_CONTEXT_CHARS:
        return None
    carried: dict[str, Any] = {
        name: _encoded(getattr(execution, name)) for name in COLUMNS if name not in _NOT_CARRIED
    }
    carried.update(
        definition=execution.definition_digest, context=context_json, row_xmin=execution.row_xmin
    )
    return carried


def carry_snapshot(ticket: DispatchOutbox, execution: LockedExecution, context_json: str) -> None:
    """Let the ticket's published message (not the stored ticket) carry the row as
    `execution`, when the step it names runs PLAIN: the only way that uses it."""
    payload = ticket.payload
    if payload.get("mode") != _PLAIN or payload.get("delayed"):
        return
    carried = snapshot(execution, context_json)
    if carried is not None:
        ticket.payload = {**payload, "snapshot": carried}


def inserted_row(
    values: Mapping[str, Any], definition_text: str, row_xmin: str
) -> LockedExecution | None:
    """The execution row just inserted with `values` (tasks.launch), as a step would
    read it; None when a column it reads was left to a database default."""
    read: dict[str, Any] = {}
    for name in COLUMNS:
        if name in values:
            read[name] = values[name]
        elif _HAS_DEFAULT[name]:
            return None
        else:
            read[name] = None
    definition, digest = pinned_with_digest(definition_text)
    return LockedExecution(
        **{**read, "definition": definition}, row_xmin=row_xmin, definition_digest=digest
    )


def from_snapshot(execution_id: uuid.UUID, data: dict[str, Any]) -> LockedExecution | None:
    """The row a snapshot describes; None when this process does not know its
    definition (it never parsed that text, or forgot it)."""
    definition = _by_digest.get(data["definition"])
    if definition is None:
        return None
    values = {name: _decoded(name, data[name]) for name in COLUMNS if name not in _NOT_CARRIED}
    return LockedExecution(
        id=execution_id,
        definition=definition,
        context=json.loads(data["context"]),
        row_xmin=data["row_xmin"],
        definition_digest=data["definition"],
        **values,
    )


# The message names the execution already; the definition travels as its digest and
# the context as the JSON text the write sent.
_NOT_CARRIED = frozenset({"id", "definition", "context"})
_PLAIN = RunMode.PLAIN.value
# Whether the database fills the column when an INSERT leaves it out.
_HAS_DEFAULT = {
    name: _EXECUTIONS.c[name].default is not None or _EXECUTIONS.c[name].server_default is not None
    for name in COLUMNS
}
# Each carried column's Python type, from the model (read once).
_PYTHON_TYPES: dict[str, type] = {
    name: _EXECUTIONS.c[name].type.python_type for name in COLUMNS if name not in _NOT_CARRIED
}


def _encoded(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decoded(name: str, value: Any) -> Any:
    """Back to the column's Python type (the model's metadata says which)."""
    if value is None:
        return None
    kind = _PYTHON_TYPES[name]
    if kind is datetime:
        return datetime.fromisoformat(value)
    return kind(value)
