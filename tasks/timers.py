"""workflows.resume_due: timer waits whose time came, and event waits that timed out.

A `wait` step for a time (`wait.duration` / `wait.until`) continues to its
`next` step once its `due_at` passed; a `wait` for an event whose `timeout`
(`due_at`) passed goes to `on_timeout`, else fails the execution with
`error_type=timeout` (engine.machine.decide_after_wait). Due waits are claimed
in bounded batches with SKIP LOCKED, so several resumers never take the same
wait; an event that arrives at the same time locks the same rows
(tasks.resume.resume_event_waits) and whichever commits first wins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.definition import Definition
from engine.machine import decide_after_wait
from engine.state import ExecutionStatus
from models.execution import Execution, Wait
from tasks import runtime
from tasks.applied import Applied
from tasks.approvals import publish_applied
from tasks.transition import current_result, wake

RESUME_DUE = "workflows.resume_due"
BATCH_SIZE = 200
WORKER_TYPE = "workflow_resumer"


def resume_due_waits(rt: runtime.Runtime, now: datetime | None = None) -> int:
    """Fire one batch of due waits; returns how many waits were settled."""
    now = now or datetime.now(UTC)
    applied_all: list[Applied] = []
    with rt.unit_of_work() as uow:
        session = uow.session
        due = session.scalars(
            select(Wait)
            .where(Wait.status == "waiting", Wait.due_at.is_not(None), Wait.due_at <= now)
            .order_by(Wait.due_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        ).all()
        for wait in due:
            applied = _fire(session, wait, now)
            if applied is not None:
                applied_all.append(applied)
        uow.commit()
    publish_applied(rt, applied_all)
    return len(due)


def _fire(session: Session, wait: Wait, now: datetime) -> Applied | None:
    timed_out = wait.kind == "event"
    execution = session.scalars(
        select(Execution).where(Execution.id == wait.execution_id).with_for_update()
    ).first()
    stale = (
        execution is None
        or execution.attempt_group != wait.attempt_group
        or execution.status not in (ExecutionStatus.WAITING, ExecutionStatus.PAUSED)
        or execution.current_step_id != wait.step_id
    )
    if stale or execution is None:
        wait.status = "cancelled"
        wait.resolved_at = now
        return None
    definition = Definition.from_dict(execution.definition)
    if not definition.has_step(wait.step_id):
        wait.status = "cancelled"
        wait.resolved_at = now
        return None
    step = definition.step(wait.step_id)
    wait.status = "timed_out" if timed_out else "resolved"
    wait.resolved_at = now
    decision = decide_after_wait(definition, step, timed_out, current_result(execution))
    label = "wait_timed_out" if timed_out else "timer_fired"
    return wake(session, execution, definition, step, decision, now, Applied(label))
