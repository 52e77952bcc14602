"""The common case written in one round trip: an atomic step that succeeded and moves on.

When a step touched nothing outside Postgres, wrote no records, and the
engine decided "continue to step X" or "finish", its whole transition is four
statements: consume the ticket, insert the step-run row, update the execution
(compare-and-set on `version`), insert the next ticket. They are sent together
as one multi-statement query of prepared statements (tasks.prepared), so a
step costs the floor's round trips (lock, write, commit) rather than one per
statement through the ORM's unit of work, and Postgres does not plan them anew.
When the step ran on an unlocked read of its execution (the optimistic path
of tasks.steprun), the same four writes are one statement of data-modifying
CTEs that all depend on the compare-and-set, so a row changed since the read
makes the statement write nothing (StaleRead) and the locked path takes over.
Anything else (failures, retries, approvals, waits, record writes, branches)
takes the general path in tasks.transition; both write the same rows.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Connection

from engine.context import deep_merge
from engine.machine import Continue, Finish, decide_after_success
from engine.outcome import StepOutcome
from engine.state import ExecutionResult, ExecutionStatus
from models.execution import DispatchOutbox
from monitoring import metrics
from tasks.dispatch import REDELIVERY_GRACE, RUN_STEP, ticket_payload
from tasks.locking import LockedExecution, snapshot
from tasks.prepared import PreparedStatement, execute_prepared
from tasks.stepping import StepAttempt
from tasks.transition import Applied

# A step run on the plain locked row (tasks.locking), not on ORM objects.
FastAttempt = StepAttempt[LockedExecution]

_CONSUME = PreparedStatement(
    "iw_consume_ticket", "DELETE FROM dispatch_outbox WHERE id = %(outbox_id)s"
)
_STEP_RUN_COLUMNS = (
    "INSERT INTO step_runs (id, organization_id, execution_id, step_id, step_type, branch_key,"
    " attempt_group, attempt, status, input, output, started_at, completed_at, duration_ms)"
)
_STEP_RUN = PreparedStatement(
    "iw_insert_step_run",
    _STEP_RUN_COLUMNS
    + " VALUES (%(run_id)s, %(organization_id)s, %(execution_id)s, %(step_id)s, %(step_type)s, '',"
    " %(attempt_group)s, %(attempt)s, 'completed', %(input)s::jsonb, %(output)s::jsonb,"
    " %(started_at)s, %(now)s, %(duration_ms)s)",
)
_CONTINUE_SET = (
    "UPDATE executions SET context = %(context)s::jsonb, current_step_id = %(next_step_id)s,"
    " result = %(result)s, status = 'running', version = version + 1, heartbeat_at = %(now)s,"
    " deadline_at = %(deadline_at)s, updated_at = now()"
)
_FINISH_SET = (
    "UPDATE executions SET context = %(context)s::jsonb, status = %(status)s, result = %(result)s,"
    " error_type = %(error_type)s, error_message = %(error_message)s, completed_at = %(now)s,"
    " duration_ms = %(duration_ms_total)s, running_seconds = %(running_seconds)s,"
    " deadline_at = NULL, heartbeat_at = %(now)s, version = version + 1, updated_at = now()"
)
_CAS = " WHERE id = %(execution_id)s AND version = %(version)s"
_CONTINUE = PreparedStatement("iw_continue_execution", _CONTINUE_SET + _CAS)
_NEXT_TICKET = PreparedStatement(
    "iw_insert_next_ticket",
    "INSERT INTO dispatch_outbox (organization_id, execution_id, task_name, payload, available_at)"
    " SELECT %(organization_id)s::uuid, %(execution_id)s::uuid, %(task_name)s::text,"
    " %(ticket)s::jsonb, %(available_at)s::timestamptz WHERE EXISTS"
    " (SELECT 1 FROM executions WHERE id = %(execution_id)s::uuid"
    " AND version = %(version)s::integer + 1)"
    " RETURNING id",
)
_FINISH = PreparedStatement("iw_finish_execution", _FINISH_SET + _CAS + " RETURNING version")

# Optimistic (tasks.steprun): the same writes as one statement, applied only if the
# row is the one the step ran on (same version and same xmin: no write of any kind
# since the read). Every write hangs off `moved`, so a lost race writes nothing; one
# statement is atomic without BEGIN/COMMIT round trips. (The SQL is put together
# from this module's constants only: nothing from outside reaches its text.)
_UNCHANGED = (
    _CAS + " AND xmin = %(row_xmin)s::xid RETURNING id, organization_id, version, xmin::text"
)
_IF_MOVED = (
    "consumed AS (DELETE FROM dispatch_outbox WHERE id = %(outbox_id)s"  # noqa: S608
    " AND EXISTS (SELECT 1 FROM moved)),"
    " run AS ("
    + _STEP_RUN_COLUMNS
    + " SELECT %(run_id)s::uuid, organization_id, id, %(step_id)s::text, %(step_type)s::text, '',"
    " %(attempt_group)s::integer, %(attempt)s::integer, 'completed', %(input)s::jsonb,"
    " %(output)s::jsonb, %(started_at)s::timestamptz, %(now)s::timestamptz,"
    " %(duration_ms)s::bigint FROM moved)"
)
# Returns the next ticket's id and the row's new xmin (the next step's snapshot).
_CAS_CONTINUE = PreparedStatement(
    "iw_cas_continue",
    f"WITH moved AS ({_CONTINUE_SET}{_UNCHANGED}), {_IF_MOVED},"  # noqa: S608
    " ticket AS (INSERT INTO dispatch_outbox"
    " (organization_id, execution_id, task_name, payload, available_at)"
    " SELECT organization_id, id, %(task_name)s::text, %(ticket)s::jsonb,"
    " %(available_at)s::timestamptz FROM moved RETURNING id)"
    " SELECT ticket.id, moved.xmin FROM ticket, moved",
)
_CAS_FINISH = PreparedStatement(
    "iw_cas_finish",
    f"WITH moved AS ({_FINISH_SET}{_UNCHANGED}), {_IF_MOVED}"  # noqa: S608
    " SELECT version FROM moved",
)


class StaleRead(Exception):
    """An optimistic write found the execution row changed since the step read it."""


def try_fast_write(
    connection: Connection,
    attempt: FastAttempt,
    outcome: StepOutcome,
    outbox_id: int,
    now: datetime,
    *,
    optimistic: bool = False,
) -> Applied | None:
    """Write the transition in one round trip, or None when the general path must do it.

    `optimistic`: the row was read without a lock; the write applies only if the row
    is unchanged since (`attempt.execution.row_xmin`), else it raises StaleRead."""
    execution = attempt.execution
    if attempt.branch_key or attempt.run is not None or attempt.log_lines:
        return None
    if attempt.records is not None and attempt.records.has_writes:
        return None
    result = ExecutionResult(execution.result) if execution.result else None
    decision = decide_after_success(attempt.definition, attempt.step, outcome, result)
    if not isinstance(decision, Continue | Finish):
        return None
    context = deep_merge(
        deep_merge(deep_merge(attempt.context, attempt.extra_updates), outcome.context_updates),
        decision.context_updates,
    )
    params = _common(attempt, outcome, outbox_id, now, context)
    params["optimistic"] = optimistic
    applied = Applied("completed")
    slug, step_id = execution.workflow_id, attempt.step.id
    seconds = params["duration_ms"] / 1000
    applied.after_commit.append(lambda: metrics.record_step(slug, step_id, "completed", seconds))
    if isinstance(decision, Continue):
        return _continue(connection, attempt, decision, params, applied)
    return _finish(connection, attempt, decision, params, applied)


def _common(
    attempt: FastAttempt,
    outcome: StepOutcome,
    outbox_id: int,
    now: datetime,
    context: dict[str, Any],
) -> dict[str, Any]:
    execution = attempt.execution
    return {
        "outbox_id": outbox_id,
        "run_id": uuid.uuid4(),
        "organization_id": execution.organization_id,
        "execution_id": execution.id,
        "step_id": attempt.step.id,
        "step_type": attempt.step.type,
        "attempt_group": execution.attempt_group,
        "attempt": attempt.attempt,
        "input": json.dumps(outcome.input),
        "output": json.dumps(outcome.output),
        "started_at": attempt.started_at,
        "now": now,
        "duration_ms": int(max((now - attempt.started_at).total_seconds(), 0) * 1000),
        "context": json.dumps(context),
        "version": execution.version,
        "row_xmin": execution.row_xmin,
    }


def _continue(
    connection: Connection,
    attempt: FastAttempt,
    decision: Continue,
    params: dict[str, Any],
    applied: Applied,
) -> Applied:
    execution = attempt.execution
    step = attempt.definition.step(decision.step_id)
    payload = ticket_payload(step, attempt_group=execution.attempt_group, delayed=False)
    now = params["now"]
    available_at = now + REDELIVERY_GRACE
    deadline_at = execution.deadline_at
    if deadline_at is None:  # not counted as running yet: start the budget now
        used = timedelta(seconds=execution.running_seconds or 0.0)
        deadline_at = now + max(attempt.definition.timeout - used, timedelta(0))
    params.update(
        next_step_id=step.id,
        result=decision.result.value if decision.result is not None else None,
        deadline_at=deadline_at,
        task_name=RUN_STEP,
        ticket=json.dumps(payload),
        available_at=available_at,
    )
    statements = _writes(params, [_CONSUME, _STEP_RUN, _CONTINUE, _NEXT_TICKET], _CAS_CONTINUE)
    row = execute_prepared(connection, statements, params).first()
    if row is None:
        _lost_compare_and_set(params)
    if params["optimistic"]:
        # The row as this write left it rides in the published message (not in the
        # stored ticket), so the next step need not read it (tasks.locking.snapshot).
        moved = replace(
            execution,
            status=str(ExecutionStatus.RUNNING),
            result=params["result"],
            current_step_id=step.id,
            version=execution.version + 1,
            deadline_at=deadline_at,
            row_xmin=row[1],
        )
        carried = snapshot(moved, params["context"])
        if carried is not None:
            payload = {**payload, "snapshot": carried}
    applied.tickets.append(
        DispatchOutbox(
            id=row[0],
            organization_id=execution.organization_id,
            execution_id=execution.id,
            task_name=RUN_STEP,
            payload=payload,
            available_at=available_at,
        )
    )
    return applied


def _finish(
    connection: Connection,
    attempt: FastAttempt,
    decision: Finish,
    params: dict[str, Any],
    applied: Applied,
) -> Applied:
    now = params["now"]
    execution = attempt.execution
    running = execution.running_seconds or 0.0
    if execution.deadline_at is not None:
        remaining = (execution.deadline_at - now).total_seconds()
        running = max(attempt.definition.timeout.total_seconds() - remaining, 0.0)
    started = execution.started_at or now
    status = decision.status.value
    params.update(
        status=status,
        result=decision.result.value if decision.result is not None else None,
        error_type=decision.error_type.value if decision.error_type is not None else None,
        error_message=decision.message if decision.status != ExecutionStatus.COMPLETED else None,
        duration_ms_total=int((now - started).total_seconds() * 1000),
        running_seconds=running,
    )
    slug, trigger, error_type = execution.workflow_id, execution.trigger_type, params["error_type"]
    seconds = (now - started).total_seconds()
    statements = _writes(params, [_CONSUME, _STEP_RUN, _FINISH], _CAS_FINISH)
    if execute_prepared(connection, statements, params).first() is None:
        _lost_compare_and_set(params)
    applied.label = status
    applied.after_commit.append(
        lambda: metrics.record_execution_finished(slug, status, trigger, seconds, error_type)
    )
    return applied


def _writes(
    params: dict[str, Any], locked: list[PreparedStatement], optimistic: PreparedStatement
) -> list[PreparedStatement]:
    return [optimistic] if params["optimistic"] else locked


def _lost_compare_and_set(params: dict[str, Any]) -> NoReturn:
    if params["optimistic"]:
        raise StaleRead(str(params["execution_id"]))
    raise RuntimeError("compare-and-set failed under the execution lock")  # cannot happen
