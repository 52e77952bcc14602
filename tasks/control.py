"""Operator control of executions: pause, resume, cancel, retry (part of the dispatch interface).

Each runs in the caller's transaction on the execution row locked FOR UPDATE,
writes what engine.lifecycle decides (the transition table allows it; the
compare-and-set `version` is bumped, so an in-flight step's transition sees
the change), and returns the tickets to publish after commit. Repeating an
operation that already took effect changes nothing; an operation that makes
no sense for the current status raises TransitionError (HTTP 409).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from engine import lifecycle
from engine.definition import Definition
from engine.lifecycle import TransitionError
from models.execution import Approval, DispatchOutbox, Execution, Wait
from monitoring import metrics
from tasks.foreach import reticket_unfinished
from tasks.recording import Recording
from tasks.transition import latest_run, ticket_step

__all__ = ["ControlResult", "TransitionError", "cancel", "pause", "resume", "retry"]


@dataclass
class ControlResult:
    execution: Execution
    changed: bool
    previous_status: str
    tickets: list[DispatchOutbox] = field(default_factory=list)
    # Metrics to record once the transaction committed.
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def pause(session: Session, execution: Execution, now: datetime) -> ControlResult:
    # The running step still finishes and records its result; the next step is
    # not dispatched while paused (the step task checks the status).
    previous = execution.status
    changes = lifecycle.pause(execution, now, _timeout(execution))
    _write(session, execution, changes)
    return ControlResult(execution, changes is not None, previous)


def resume(session: Session, execution: Execution, now: datetime) -> ControlResult:
    previous = execution.status
    waiting = execution.status == lifecycle.S.PAUSED and _is_waiting(session, execution)
    changes = lifecycle.resume(execution, now, _timeout(execution), waiting=waiting)
    if changes is None or changes["status"] != lifecycle.S.RUNNING:
        _write(session, execution, changes)
        return ControlResult(execution, changes is not None, previous)
    return _with_current_step(session, execution, changes, now, previous)


def cancel(session: Session, execution: Execution, now: datetime, reason: str) -> ControlResult:
    """Cancel, closing what the execution holds: its open waits and approvals, its tickets."""
    previous = execution.status
    changes = lifecycle.cancel(execution, now, _timeout(execution), reason)
    if changes is None:
        return ControlResult(execution, False, previous)
    _write(session, execution, changes)
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
    changes = lifecycle.retry(execution, now, _timeout(execution))
    if changes is None:
        return ControlResult(execution, False, previous)  # already retried
    return _with_current_step(session, execution, changes, now, previous)


def _timeout(execution: Execution) -> timedelta:
    return Definition.from_dict(execution.definition).timeout


def _write(session: Session, execution: Execution, changes: lifecycle.Changes | None) -> None:
    rec = Recording(session, execution)
    rec.change(changes)
    rec.write(session.connection())


def _with_current_step(
    session: Session,
    execution: Execution,
    changes: lifecycle.Changes,
    now: datetime,
    previous: str,
) -> ControlResult:
    """Write the change with the tickets that run the execution's current step again."""
    rec = Recording(session, execution)
    rec.change(changes)
    tickets = _ticket_current_step(rec, now)
    rec.write(session.connection())
    return ControlResult(execution, True, previous, tickets)


def _ticket_current_step(rec: Recording, now: datetime) -> list[DispatchOutbox]:
    execution = rec.current
    step_id = execution.current_step_id
    assert step_id is not None
    definition = Definition.from_dict(execution.definition)
    step = definition.step(step_id)
    latest = latest_run(rec.session, execution, step)
    attempt, due_at = 1, None
    if latest is not None and latest.status == "running" and step.type in {"parallel", "foreach"}:
        # A fan-out in progress: its branches' deliveries were spent while paused.
        return reticket_unfinished(rec, definition, step, latest, now=now)
    if latest is not None:
        if latest.status == "running":
            return []  # still in flight: it dispatches its successor itself
        if latest.status == "pending":
            attempt, due_at = latest.attempt, latest.due_at
        else:
            attempt = latest.attempt + 1
    due_at = due_at if due_at is not None and due_at > now else None
    return [ticket_step(rec, definition, step, now, attempt=attempt, due_at=due_at)]


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
