"""workflows.sweep_stuck: nothing stays running forever.

Two duties, each a bounded batch claimed with SKIP LOCKED:

* fail executions whose running-time budget (workflow `timeout`) ran out;
* re-dispatch executions whose current step has not progressed within its
  limit and that hold no ticket (the relay covers those that do): a new ticket
  for the current attempt; the step task then takes the attempt over if its
  process is gone, or leaves it to a live one (advisory lock).

The same job (tasks.jobs.sweep_stuck) queues stalled shadow reports again
(tasks.shadow.requeue_stalled).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from engine import lifecycle
from engine.definition import Definition
from engine.state import ExecutionStatus, StepRunStatus
from models.execution import DispatchOutbox, Execution
from tasks import runtime
from tasks.applied import record_metrics
from tasks.dispatch import HARD_LIMIT_GRACE_SECONDS, Ticket, is_immediate, step_limit
from tasks.foreach import reticket_unfinished
from tasks.recording import Recording
from tasks.transition import fail_execution, latest_run, ticket_step

BATCH_SIZE = 200
WORKER_TYPE = "stuck_sweeper"
ACTIVE = (str(ExecutionStatus.PENDING), str(ExecutionStatus.RUNNING))
# Nothing can be stuck for less than this: it spares executions that just moved.
MIN_STUCK_AGE = timedelta(seconds=30)


def fail_overdue(rt: runtime.Runtime, now: datetime) -> int:
    applied_all = []
    with rt.unit_of_work() as uow:
        session = uow.session
        overdue = session.scalars(
            select(Execution)
            .where(Execution.status.in_(ACTIVE), Execution.deadline_at < now)
            .order_by(Execution.deadline_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        ).all()
        for execution in overdue:
            rec = Recording(session, execution)
            applied_all.append(fail_execution(rec, now, Definition.from_dict(execution.definition)))
            rec.write(session.connection())
            session.execute(
                delete(DispatchOutbox).where(DispatchOutbox.execution_id == execution.id)
            )
        uow.commit()
    for applied in applied_all:
        record_metrics(applied)
    return len(overdue)


def redispatch_stuck(rt: runtime.Runtime, now: datetime) -> int:
    rows = []
    with rt.unit_of_work() as uow:
        session = uow.session
        has_ticket = exists().where(DispatchOutbox.execution_id == Execution.id)
        candidates = session.scalars(
            select(Execution)
            .where(
                Execution.status.in_(ACTIVE),
                Execution.heartbeat_at < now - MIN_STUCK_AGE,
                ~has_ticket,
            )
            .order_by(Execution.heartbeat_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        ).all()
        for execution in candidates:
            rows.extend(_redispatch(session, execution, now))
        uow.commit()
    if rows:
        rt.publisher.publish(Ticket.from_row(row) for row in rows if is_immediate(row))
    return len(rows)


def _redispatch(session: Session, execution: Execution, now: datetime) -> list[DispatchOutbox]:
    if execution.current_step_id is None:
        return []
    definition = Definition.from_dict(execution.definition)
    if not definition.has_step(execution.current_step_id):
        return []
    step = definition.step(execution.current_step_id)
    limit = step_limit(step.timeout) + timedelta(seconds=HARD_LIMIT_GRACE_SECONDS)
    heartbeat = execution.heartbeat_at or now
    if heartbeat > now - limit:
        return []
    latest = latest_run(session, execution, step)
    rec = Recording(session, execution)
    rec.change(lifecycle.touch(execution, now))
    if latest is not None and latest.status == StepRunStatus.RUNNING and step.body:
        tickets = reticket_unfinished(rec, definition, step, latest, now=now)
    else:
        attempt = 1
        if latest is not None:
            finished = latest.status in (StepRunStatus.COMPLETED, StepRunStatus.FAILED)
            attempt = latest.attempt + 1 if finished else latest.attempt
        tickets = [ticket_step(rec, definition, step, now, attempt=attempt)]
    rec.write(session.connection())
    return tickets


def sweep(rt: runtime.Runtime, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    return fail_overdue(rt, now) + redispatch_stuck(rt, now)
