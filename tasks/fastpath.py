"""The common case in one round trip: an atomic step that succeeded and moves on.

When a step touched nothing outside Postgres, wrote no records, and the
engine decided "continue to step X" or "finish", its whole transition (the
execution's next state as engine.lifecycle decides it, the step-run row, the
consumed and the next ticket) is one statement of models.writer, whether the
step ran under the row lock or optimistically on an unlocked read (then the
write applies only if the row is unchanged since, else StaleRow and the locked
path takes over). Anything else (failures, retries, approvals, waits, record
writes, branches) takes the general path in tasks.transition.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine import lifecycle
from engine.context import deep_merge
from engine.machine import Continue, Finish, decide_after_success
from engine.outcome import StepOutcome
from engine.state import ExecutionResult, StepRunStatus
from models import writer
from models.execution import DispatchOutbox
from models.rows import JsonText
from monitoring import metrics
from tasks.applied import Applied
from tasks.dispatch import new_ticket
from tasks.locking import COLUMNS, LockedExecution, snapshot
from tasks.stepping import StepAttempt

# A step run on the plain row (tasks.locking), not on ORM objects.
FastAttempt = StepAttempt[LockedExecution]
StaleRead = writer.StaleRow
# What a snapshot takes from the written columns (the context goes as the JSON sent).
_ROW_COLUMNS = frozenset(COLUMNS) - {"context"}


def try_fast_write(
    connection: Any,
    attempt: FastAttempt,
    outcome: StepOutcome,
    outbox_id: int,
    now: datetime,
    *,
    optimistic: bool = False,
) -> Applied | None:
    """Write a plain step's transition (tasks.steprun: the ticket said PLAIN, the attempt
    has no step-run row yet) in one round trip.

    `optimistic`: the row was read without a lock; the write applies only if the row
    is unchanged since (`attempt.execution.row_xmin`), else it raises StaleRead."""
    execution = attempt.execution
    result = ExecutionResult(execution.result) if execution.result else None
    decision = decide_after_success(attempt.definition, attempt.step, outcome, result)
    if not isinstance(decision, Continue | Finish):
        return None  # not for a plain step (no approval, no wait): the general path
    context = deep_merge(
        deep_merge(deep_merge(attempt.context, attempt.extra_updates), outcome.context_updates),
        decision.context_updates,
    )
    timeout = attempt.definition.timeout
    changes = lifecycle.start_step(execution, now, timeout)
    moved = lifecycle.after(execution, changes)
    next_ticket = None
    if isinstance(decision, Continue):
        changes.update(lifecycle.continue_to(moved, decision, now, timeout))
        next_ticket = new_ticket(
            organization_id=execution.organization_id,
            execution_id=execution.id,
            definition=attempt.definition,
            step=attempt.definition.step(decision.step_id),
            now=now,
            attempt_group=execution.attempt_group,
        )
    else:
        changes.update(lifecycle.finish(moved, decision, now, timeout))
    context_json = json.dumps(context)
    changes["context"] = JsonText(context_json)
    run = _step_run(attempt, outcome, now)
    written = writer.write(
        connection,
        writer.StepTransition(
            execution_id=execution.id,
            version=execution.version,
            changes=changes,
            outbox_id=outbox_id,
            row_xmin=execution.row_xmin if optimistic else None,
            step_run=run,
            tickets=[_ticket_row(next_ticket)] if next_ticket is not None else [],
        ),
    )
    applied = Applied("completed")
    slug, step_id, seconds = execution.workflow_id, attempt.step.id, run["duration_ms"] / 1000
    applied.after_commit.append(lambda: metrics.record_step(slug, step_id, "completed", seconds))
    if next_ticket is None:
        _record_finish(applied, execution, changes)
        return applied
    next_ticket.id = written.ticket_ids[0]
    if optimistic:
        # The row as this write left it rides in the published message (not in the
        # stored ticket), so the next step need not read it (tasks.locking.snapshot).
        row = replace(
            execution,
            **{name: value for name, value in changes.items() if name in _ROW_COLUMNS},
            context=context,
            row_xmin=written.row_xmin,
        )
        carried = snapshot(row, context_json)
        if carried is not None:
            next_ticket.payload = {**next_ticket.payload, "snapshot": carried}
    applied.tickets.append(next_ticket)
    return applied


def _step_run(attempt: FastAttempt, outcome: StepOutcome, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "step_id": attempt.step.id,
        "step_type": attempt.step.type,
        "branch_key": "",
        "attempt_group": attempt.execution.attempt_group,
        "attempt": attempt.attempt,
        "status": StepRunStatus.COMPLETED.value,
        "input": outcome.input,
        "output": outcome.output,
        "started_at": attempt.started_at,
        "completed_at": now,
        "duration_ms": int(max((now - attempt.started_at).total_seconds(), 0) * 1000),
    }


def _ticket_row(ticket: DispatchOutbox) -> dict[str, Any]:
    return {
        "task_name": ticket.task_name,
        "payload": ticket.payload,
        "available_at": ticket.available_at,
    }


def _record_finish(
    applied: Applied, execution: LockedExecution, changes: lifecycle.Changes
) -> None:
    status, error_type = changes["status"], changes["error_type"]
    slug, trigger = execution.workflow_id, execution.trigger_type
    seconds = changes["duration_ms"] / 1000
    applied.label = status
    applied.after_commit.append(
        lambda: metrics.record_execution_finished(slug, status, trigger, seconds, error_type)
    )
