"""The execution row a step task locks, read as plain values in one round trip.

Every step task starts by locking its execution row (SELECT ... FOR UPDATE)
and reading its attempt's step-run row, if any. Most steps then go on to the
one-round-trip write of tasks.fastpath, which needs a handful of columns, not
ORM objects: loading them through the ORM cost more than the rest of the
step's Python. So the lock is taken with a plain query of exactly those
columns (a prepared statement: tasks.prepared); a step that takes the general
path (tasks.transition) loads the ORM rows afterwards, in the same transaction
and under the same lock.

The pinned definition is read as JSON text and parsed once per process per
distinct text: it never changes for an execution, and executions of one
workflow version share it, so steps after the first skip the parse.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from engine.definition import Definition
from tasks.prepared import PreparedStatement, execute_prepared

_COLUMNS = (
    "SELECT e.id, e.organization_id, e.workflow_id, e.definition::text, e.status, e.result,"
    " e.trigger_type, e.context, e.current_step_id, e.attempt_group, e.version, e.started_at,"
    " e.running_seconds, e.deadline_at, e.xmin::text, r.status, r.due_at"
    " FROM executions e LEFT JOIN step_runs r ON r.execution_id = e.id"
    " AND r.step_id = %(step_id)s AND r.branch_key = %(branch_key)s"
    " AND r.attempt_group = %(attempt_group)s AND r.attempt = %(attempt)s"
    " WHERE e.id = %(execution_id)s"
)
_LOCK = PreparedStatement("iw_lock_step", _COLUMNS + " FOR UPDATE OF e")
# The same row without the lock, for a step run optimistically (tasks.optimistic).
_READ = PreparedStatement("iw_read_step", _COLUMNS)


@dataclass(frozen=True, slots=True)
class LockedExecution:
    """The columns of a locked execution row that running a step reads."""

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
    # compare-and-set on it sees every change since the read (tasks.optimistic).
    row_xmin: str
    # Names the pinned definition's text in a step message's snapshot.
    definition_digest: str

    def is_past_deadline(self, now: datetime) -> bool:
        return self.deadline_at is not None and self.deadline_at <= now


@dataclass(frozen=True, slots=True)
class AttemptState:
    """The attempt's step-run row, when one exists (a retry, a re-run, a duplicate)."""

    status: str
    due_at: datetime | None


def lock_execution(
    connection: Connection,
    *,
    execution_id: uuid.UUID,
    step_id: str,
    branch_key: str,
    attempt_group: int,
    attempt: int,
    lock: bool = True,
) -> tuple[LockedExecution, AttemptState | None] | None:
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
    definition, digest = pinned_with_digest(row[3])
    execution = LockedExecution(
        id=row[0],
        organization_id=row[1],
        workflow_id=row[2],
        definition=definition,
        status=row[4],
        result=row[5],
        trigger_type=row[6],
        context=row[7],
        current_step_id=row[8],
        attempt_group=row[9],
        version=row[10],
        started_at=row[11],
        running_seconds=row[12],
        deadline_at=row[13],
        row_xmin=row[14],
        definition_digest=digest,
    )
    return execution, None if row[15] is None else AttemptState(row[15], row[16])


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
# The row as a step's optimistic write left it travels in the next step's message,
# so that step runs without reading it again: its compare-and-set (same version,
# same xmin) still rejects a row that changed since, and then the locked path reads
# it afresh. Only small contexts travel; a message without a snapshot (the first
# step, one the relay re-published, a big context) reads the row as before.
SNAPSHOT_MAX_CONTEXT_CHARS = 8192


def snapshot(execution: LockedExecution, context_json: str) -> dict[str, Any] | None:
    """The message form of the row (`context_json`: its context, as JSON text)."""
    if len(context_json) > SNAPSHOT_MAX_CONTEXT_CHARS:
        return None
    return {
        "organization_id": str(execution.organization_id),
        "workflow_id": execution.workflow_id,
        "definition": execution.definition_digest,
        "status": execution.status,
        "result": execution.result,
        "trigger_type": execution.trigger_type,
        "context": context_json,
        "current_step_id": execution.current_step_id,
        "attempt_group": execution.attempt_group,
        "version": execution.version,
        "started_at": _iso(execution.started_at),
        "running_seconds": execution.running_seconds,
        "deadline_at": _iso(execution.deadline_at),
        "row_xmin": execution.row_xmin,
    }


def from_snapshot(execution_id: uuid.UUID, data: dict[str, Any]) -> LockedExecution | None:
    """The row a snapshot describes; None when this process does not know its
    definition (it never parsed that text, or forgot it)."""
    definition = _by_digest.get(data["definition"])
    if definition is None:
        return None
    return LockedExecution(
        id=execution_id,
        organization_id=uuid.UUID(data["organization_id"]),
        workflow_id=data["workflow_id"],
        definition=definition,
        status=data["status"],
        result=data["result"],
        trigger_type=data["trigger_type"],
        context=json.loads(data["context"]),
        current_step_id=data["current_step_id"],
        attempt_group=int(data["attempt_group"]),
        version=int(data["version"]),
        started_at=_datetime(data["started_at"]),
        running_seconds=data["running_seconds"],
        deadline_at=_datetime(data["deadline_at"]),
        row_xmin=data["row_xmin"],
        definition_digest=data["definition"],
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
