"""Operator control of executions: pause, resume, cancel, retry (part of the dispatch interface).

Each runs in the caller's transaction on the execution row locked FOR UPDATE,
bumps its compare-and-set `version` (so an in-flight step's transition sees
the change), and returns the tickets to publish after commit. Repeating an
operation that already took effect changes nothing; an operation that makes
no sense for the current status raises TransitionError (HTTP 409).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from engine.definition import Definition
from engine.state import FINISHED_STATES, ErrorType, ExecutionStatus
from models.execution import Approval, DispatchOutbox, Execution, StepRun, Wait
from monitoring import metrics
from tasks.budget import enter_running, leave_running
from tasks.foreach import reticket_unfinished
from tasks.transition import ticket_step

S = ExecutionStatus
PAUSABLE = frozenset({S.PENDING, S.RUNNING, S.WAITING})


class TransitionError(Exception):
    """The operation does not apply to the execution's current status."""


@dataclass
class ControlResult:
    execution: Execution
    changed: bool
    previous_status: str
    tickets: list[DispatchOutbox] = field(default_factory=list)
    # Metrics to record once the transaction committed.
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def pause(session: Session, execution: Execution, now: datetime) -> ControlResult:
    previous = execution.status
    if previous == S.PAUSED:
        return ControlResult(execution, False, previous)
    if previous not in PAUSABLE:
        raise TransitionError(f"cannot pause a {previous} execution")
    if previous in (S.PENDING, S.RUNNING):
        leave_running(execution, now)
    # The running step still finishes and records its result; the next step is
    # not dispatched while paused (the step task checks the status).
    execution.status = str(S.PAUSED)
    execution.version += 1
    return ControlResult(execution, True, previous)


def resume(session: Session, execution: Execution, now: datetime) -> ControlResult:
    previous = execution.status
    if previous in PAUSABLE:
        return ControlResult(execution, False, previous)
    if previous != S.PAUSED:
        raise TransitionError(f"cannot resume a {previous} execution")
    execution.version += 1
    if execution.current_step_id is None or _is_waiting(session, execution):
        # Paused while waiting for an approval or an event: go back to waiting.
        execution.status = str(S.WAITING)
        return ControlResult(execution, True, previous)
    execution.status = str(S.RUNNING)
    enter_running(execution, now)
    tickets = _ticket_current_step(session, execution, now)
    return ControlResult(execution, True, previous, tickets)


def cancel(session: Session, execution: Execution, now: datetime, reason: str) -> ControlResult:
    previous = execution.status
    if previous == S.CANCELLED:
        return ControlResult(execution, False, previous)
    if previous in FINISHED_STATES:
        raise TransitionError(f"cannot cancel a {previous} execution")
    if previous in (S.PENDING, S.RUNNING):
        leave_running(execution, now)
    execution.status = str(S.CANCELLED)
    execution.error_type = str(ErrorType.CANCELLED)
    execution.error_message = reason
    execution.completed_at = now
    execution.duration_ms = _duration_ms(execution, now)
    execution.deadline_at = None
    execution.version += 1
    _close_open_waits(session, execution, now, reason)
    session.execute(delete(DispatchOutbox).where(DispatchOutbox.execution_id == execution.id))
    slug, trigger = execution.workflow_id, execution.trigger_type
    seconds = (execution.duration_ms or 0) / 1000
    record = lambda: metrics.record_execution_finished(  # noqa: E731 - a deferred call
        slug, "cancelled", trigger, seconds, "cancelled"
    )
    return ControlResult(execution, True, previous, after_commit=[record])


def retry(session: Session, execution: Execution, now: datetime) -> ControlResult:
    previous = execution.status
    if previous in (S.PENDING, S.RUNNING) and execution.attempt_group > 1:
        return ControlResult(execution, False, previous)  # already retried
    if previous != S.FAILED:
        raise TransitionError(f"only a failed execution can be retried (this one is {previous})")
    if execution.current_step_id is None:
        raise TransitionError("the execution has no step to retry from")
    definition = Definition.from_dict(execution.definition)
    # A new attempt group: a new idempotency key for every effect of the re-run.
    execution.attempt_group += 1
    execution.status = str(S.RUNNING)
    execution.result = None
    execution.error_type = None
    execution.error_message = None
    execution.completed_at = None
    execution.duration_ms = None
    execution.running_seconds = 0.0
    execution.deadline_at = None
    enter_running(execution, now, timeout=definition.timeout)
    execution.version += 1
    tickets = _ticket_current_step(session, execution, now)
    return ControlResult(execution, True, previous, tickets)


def _ticket_current_step(
    session: Session, execution: Execution, now: datetime
) -> list[DispatchOutbox]:
    step_id = execution.current_step_id
    assert step_id is not None
    definition = Definition.from_dict(execution.definition)
    latest = session.scalars(
        select(StepRun)
        .where(
            StepRun.execution_id == execution.id,
            StepRun.step_id == step_id,
            StepRun.branch_key == "",
            StepRun.attempt_group == execution.attempt_group,
        )
        .order_by(StepRun.attempt.desc())
        .limit(1)
    ).first()
    attempt, due_at = 1, None
    step = definition.step(step_id)
    if latest is not None and latest.status == "running" and step.type in {"parallel", "foreach"}:
        # A fan-out in progress: its branches' deliveries were spent while paused.
        return reticket_unfinished(session, execution, step, latest, now)
    if latest is not None:
        if latest.status == "running":
            return []  # still in flight: it dispatches its successor itself
        if latest.status == "pending":
            attempt, due_at = latest.attempt, latest.due_at
        else:
            attempt = latest.attempt + 1
    execution.heartbeat_at = now
    due_at = due_at if due_at is not None and due_at > now else None
    return [ticket_step(session, execution, step, now, attempt=attempt, due_at=due_at)]


def _is_waiting(session: Session, execution: Execution) -> bool:
    scope = (
        (Wait.execution_id == execution.id)
        & (Wait.attempt_group == execution.attempt_group)
        & (Wait.status == "waiting")
    )
    if session.scalar(select(Wait.id).where(scope).limit(1)) is not None:
        return True
    approval = session.scalar(
        select(Approval.id)
        .where(
            Approval.execution_id == execution.id,
            Approval.attempt_group == execution.attempt_group,
            Approval.status == "pending",
        )
        .limit(1)
    )
    return approval is not None


def _close_open_waits(session: Session, execution: Execution, now: datetime, reason: str) -> None:
    session.execute(
        update(Wait)
        .where(Wait.execution_id == execution.id, Wait.status == "waiting")
        .values(status="cancelled", resolved_at=now)
    )
    session.execute(
        update(Approval)
        .where(Approval.execution_id == execution.id, Approval.status == "pending")
        .values(status="cancelled", decided_at=now, decision_reason=reason)
    )


def _duration_ms(execution: Execution, now: datetime) -> int | None:
    if execution.started_at is None:
        return None
    return int((now - execution.started_at).total_seconds() * 1000)
