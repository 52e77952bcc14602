"""Recording a step's result and the execution's next state, in the caller's transaction.

The caller holds the execution row FOR UPDATE and has checked that the ticket
is current (compare-and-set). The execution's lifecycle columns (status,
budget, version) change only as engine.lifecycle decides (`write_changes`).
What is to happen after the commit (tickets to publish, metrics to record)
comes back in `Applied`, so a transaction that rolls back publishes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import lifecycle
from engine.context import deep_merge
from engine.definition import Definition, Step
from engine.errors import StepError
from engine.executor import BranchOutcome, StepOutcome, join_parallel, plan_parallel
from engine.machine import (
    AwaitApproval,
    Continue,
    Decision,
    Finish,
    RetryAt,
    Wait,
    decide_after_failure,
    decide_after_join,
    decide_after_success,
    retry_due,
    time_out,
)
from engine.outcome import JoinDecision
from engine.state import ExecutionResult, ExecutionStatus, StepRunStatus
from models.execution import Approval, DispatchOutbox, Execution, StepRun
from models.execution import Wait as WaitRow
from models.writer import write_loaded
from monitoring import metrics
from tasks.applied import Applied
from tasks.dispatch import new_ticket
from tasks.stepping import StepAttempt, retry_rng

S = ExecutionStatus
DEFAULT_APPROVER_ROLE = "admin"


def current_result(execution: Execution) -> ExecutionResult | None:
    return ExecutionResult(execution.result) if execution.result else None


# --- step results ---------------------------------------------------------------------------
def apply_outcome(
    session: Session, attempt: StepAttempt, outcome: StepOutcome, now: datetime
) -> Applied:
    output = _with_log(outcome.output, attempt)
    status = StepRunStatus.COMPLETED
    if attempt.branch_key:
        branch = BranchOutcome.from_outcome(outcome)
        attempt.finish_run(
            session, status, now, input=outcome.input, output=branch_output(branch, output)
        )
        apply_records(attempt)
        applied = Applied("branch_completed")
        step_metric(applied, attempt, status)
        return _maybe_join(session, attempt, now, applied)
    attempt.finish_run(session, status, now, input=outcome.input, output=output)
    apply_records(attempt)
    execution = attempt.execution
    context = deep_merge(
        deep_merge(attempt.context, attempt.extra_updates), outcome.context_updates
    )
    decision = decide_after_success(
        attempt.definition, attempt.step, outcome, current_result(execution)
    )
    applied = Applied("completed")
    step_metric(applied, attempt, status)
    return apply_decision(session, attempt, decision, now, applied, context=context)


def apply_failure(
    session: Session, attempt: StepAttempt, error: StepError, now: datetime
) -> Applied:
    attempt.finish_run(
        session,
        StepRunStatus.FAILED,
        now,
        output=_with_log({"error": error.to_dict()}, attempt),
        error_message=error.message,
        error_code=error.code[:50],
    )
    applied = Applied("failed")
    step_metric(applied, attempt, StepRunStatus.FAILED)
    execution = attempt.execution
    if attempt.branch_key:
        due = retry_due(attempt.step, error, attempt.attempt, now, retry_rng)
        if due is not None:
            retry = RetryAt(step_id=attempt.step.id, due=due, attempt=attempt.attempt + 1)
            return schedule_retry(session, attempt, retry, now, applied)
        return _maybe_join(session, attempt, now, applied)
    context = deep_merge(attempt.context, attempt.extra_updates)
    decision = decide_after_failure(
        attempt.definition,
        attempt.step,
        error,
        attempt.attempt,
        now,
        retry_rng,
        current_result=current_result(execution),
    )
    return apply_decision(session, attempt, decision, now, applied, context=context)


def fail_execution(
    session: Session, execution: Execution, now: datetime, definition: Definition
) -> Applied:
    """The workflow timeout ran out (sweeper or a late step)."""
    applied = Applied("timed_out")
    _finish(session, execution, definition, time_out(definition), now, applied)
    return applied


# --- decisions ------------------------------------------------------------------------------
def apply_decision(
    session: Session,
    attempt: StepAttempt,
    decision: Decision,
    now: datetime,
    applied: Applied,
    *,
    context: dict[str, Any] | None = None,
) -> Applied:
    """Carry out the decision: one write of the execution row, with `context` (the step's
    context, when the caller changed it) as the base the decision's updates merge into."""
    execution, definition = attempt.execution, attempt.definition
    base = execution.context if context is None else context
    if isinstance(decision, RetryAt):
        return schedule_retry(session, attempt, decision, now, applied, context=context)
    if isinstance(decision, Finish):
        _finish(session, execution, definition, decision, now, applied, context=base)
        return applied
    if isinstance(decision, Continue):
        changes = lifecycle.continue_to(execution, decision, now, definition.timeout)
        updated = deep_merge(base, decision.context_updates)
        write_changes(session, execution, {**changes, "context": updated})
        if execution.status != S.PAUSED:
            applied.tickets.append(
                ticket_step(session, execution, definition, definition.step(decision.step_id), now)
            )
        return applied
    if isinstance(decision, AwaitApproval):
        _create_approval(session, attempt, decision, now, applied)
    elif isinstance(decision, Wait):
        _create_wait(session, attempt, decision, now)
    changes = lifecycle.park(execution, decision, now, definition.timeout)
    write_changes(session, execution, changes if context is None else {**changes, "context": base})
    applied.label = "waiting"
    return applied


def write_changes(
    session: Session, execution: Execution, changes: lifecycle.Changes | None
) -> None:
    """Write what engine.lifecycle decided (and context updates) to the locked row, through
    the transition writer (models.writer.write_loaded)."""
    write_loaded(session, execution, changes or {})


def ticket_step(
    session: Session,
    execution: Execution,
    definition: Definition,
    step: Step,
    now: datetime,
    *,
    branch_key: str = "",
    attempt: int = 1,
    due_at: datetime | None = None,
) -> DispatchOutbox:
    """Add a ticket for this step of the execution to the session's transaction.

    Without `due_at` the caller publishes it after commit and the relay only
    steps in after REDELIVERY_GRACE; with `due_at` (a retry backoff) the relay
    publishes it when it falls due.
    """
    ticket = new_ticket(
        organization_id=execution.organization_id,
        execution_id=execution.id,
        definition=definition,
        step=step,
        now=now,
        attempt_group=execution.attempt_group,
        attempt=attempt,
        branch_key=branch_key,
        due_at=due_at,
    )
    session.add(ticket)
    return ticket


def schedule_retry(
    session: Session,
    attempt: StepAttempt,
    decision: RetryAt,
    now: datetime,
    applied: Applied,
    *,
    context: dict[str, Any] | None = None,
) -> Applied:
    execution = attempt.execution
    session.add(
        StepRun(
            organization_id=execution.organization_id,
            execution_id=execution.id,
            step_id=attempt.step.id,
            step_type=attempt.step.type,
            branch_key=attempt.branch_key,
            attempt_group=execution.attempt_group,
            attempt=decision.attempt,
            status=str(StepRunStatus.PENDING),
            due_at=decision.due,
        )
    )
    if execution.status != S.PAUSED:
        applied.tickets.append(
            ticket_step(
                session,
                execution,
                attempt.definition,
                attempt.step,
                now,
                branch_key=attempt.branch_key,
                attempt=decision.attempt,
                due_at=decision.due,
            )
        )
    changes = lifecycle.retry_later(execution, decision.due, now)
    write_changes(
        session, execution, changes if context is None else {**changes, "context": context}
    )
    applied.label = "retry_scheduled"
    slug, name = execution.workflow_id, attempt.step.id
    applied.after_commit.append(lambda: metrics.record_step_retry(slug, name))
    return applied


def _finish(  # noqa: PLR0917 - the decision's parts, in the order the callers have them
    session: Session,
    execution: Execution,
    definition: Definition,
    decision: Finish,
    now: datetime,
    applied: Applied,
    *,
    context: dict[str, Any] | None = None,
) -> None:
    changes = lifecycle.finish(execution, decision, now, definition.timeout)
    context = execution.context if context is None else context
    updated = deep_merge(context, decision.context_updates)
    write_changes(session, execution, {**changes, "context": updated})
    applied.label = decision.status.value
    slug, trigger, status = execution.workflow_id, execution.trigger_type, decision.status.value
    error_type, seconds = execution.error_type, (execution.duration_ms or 0) / 1000
    applied.after_commit.append(
        lambda: metrics.record_execution_finished(slug, status, trigger, seconds, error_type)
    )


def _create_approval(
    session: Session, attempt: StepAttempt, decision: AwaitApproval, now: datetime, applied: Applied
) -> None:
    execution = attempt.execution
    request = decision.request
    approval_id = attempt.approval_id
    existing = session.get(Approval, approval_id) if approval_id is not None else None
    if existing is not None:
        return  # the same attempt group already asked (a re-run after a crash)
    session.add(
        Approval(
            id=approval_id,
            organization_id=execution.organization_id,
            execution_id=execution.id,
            workflow_id=execution.workflow_id,
            step_id=decision.step_id,
            attempt_group=execution.attempt_group,
            entity_type=request.entity,
            entity_id=request.entity_id,
            approver_role=request.approver_role or DEFAULT_APPROVER_ROLE,
            status="pending",
            reason=request.reason,
            data={**dict(request.data), "request": request.to_dict()},
            requested_at=now,
            expires_at=request.expires_at(now),
        )
    )
    slug = execution.workflow_id
    applied.after_commit.append(lambda: metrics.record_approval(slug, "requested"))


def _create_wait(session: Session, attempt: StepAttempt, decision: Wait, now: datetime) -> None:
    execution = attempt.execution
    request = decision.request
    session.add(
        WaitRow(
            organization_id=execution.organization_id,
            execution_id=execution.id,
            step_id=decision.step_id,
            attempt_group=execution.attempt_group,
            kind="event" if request.is_for_event else "timer",
            event_type=request.event,
            match=dict(request.match) if request.match is not None else None,
            due_at=request.due_at(now),
            status="waiting",
        )
    )


# --- parallel -------------------------------------------------------------------------------
def fan_out(session: Session, attempt: StepAttempt, now: datetime) -> Applied:
    """Start a parallel step: its own step-run row stays running until the join."""
    attempt.mark_running(session, now)
    applied = Applied("fanned_out")
    execution = attempt.execution
    context = deep_merge(attempt.context, attempt.extra_updates)
    write_changes(session, execution, {**lifecycle.touch(execution, now), "context": context})
    for branch in plan_parallel(attempt.step):
        applied.tickets.append(
            ticket_step(
                session,
                execution,
                attempt.definition,
                branch,
                now,
                branch_key=f"{attempt.step.id}/{branch.id}",
            )
        )
    return applied


def parent_step_id(branch_key: str) -> str:
    return branch_key.split("/", 1)[0]


def _maybe_join(session: Session, attempt: StepAttempt, now: datetime, applied: Applied) -> Applied:
    """Join once every branch ended; the execution row lock makes exactly one branch do it."""
    execution = attempt.execution
    parent = attempt.definition.step(parent_step_id(attempt.branch_key))
    parent_run = session.scalars(
        select(StepRun)
        .where(
            StepRun.execution_id == execution.id,
            StepRun.step_id == parent.id,
            StepRun.branch_key == "",
            StepRun.attempt_group == execution.attempt_group,
        )
        .order_by(StepRun.attempt.desc())
        .limit(1)
    ).first()
    if parent_run is None or parent_run.status != StepRunStatus.RUNNING:
        return applied
    session.flush()
    outcomes = _branch_outcomes(session, execution, parent)
    if outcomes is None:
        write_changes(session, execution, lifecycle.touch(execution, now))
        return applied
    join = join_parallel(parent, outcomes)
    return apply_join(session, attempt, parent, parent_run, join, now=now, applied=applied)


def apply_join(
    session: Session,
    attempt: StepAttempt,
    step: Step,
    parent_run: StepRun,
    join: JoinDecision,
    *,
    now: datetime,
    applied: Applied,
) -> Applied:
    """Close a fan-out step's run with its join (parallel or foreach) and route the flow."""
    execution = attempt.execution
    parent_attempt = StepAttempt(
        execution,
        attempt.definition,
        step,
        "",
        parent_run.attempt,
        parent_run,
        parent_run.started_at or now,
        dict(execution.context),
    )
    status = StepRunStatus.COMPLETED if join.passed else StepRunStatus.FAILED
    parent_attempt.finish_run(
        session, status, now, output=join.to_dict(), error_message=join.message
    )
    step_metric(applied, parent_attempt, status)
    decision = decide_after_join(attempt.definition, step, join, current_result(execution))
    applied.label = "joined"
    return apply_decision(session, parent_attempt, decision, now, applied)


def _branch_outcomes(
    session: Session, execution: Execution, parent: Step
) -> dict[str, BranchOutcome] | None:
    rows = session.scalars(
        select(StepRun).where(
            StepRun.execution_id == execution.id,
            StepRun.branch_key.startswith(f"{parent.id}/", autoescape=True),
            StepRun.attempt_group == execution.attempt_group,
        )
    ).all()
    latest: dict[str, StepRun] = {}
    for row in rows:
        if row.step_id not in latest or row.attempt > latest[row.step_id].attempt:
            latest[row.step_id] = row
    outcomes: dict[str, BranchOutcome] = {}
    for branch in plan_parallel(parent):
        ended = latest.get(branch.id)
        if ended is None or ended.status not in (StepRunStatus.COMPLETED, StepRunStatus.FAILED):
            return None
        outcomes[branch.id] = _branch_from_row(ended)
    return outcomes


def branch_output(branch: BranchOutcome, output: Any) -> dict[str, Any]:
    return {
        "passed": branch.passed,
        "output": output,
        "context_updates": dict(branch.context_updates),
    }


def _branch_from_row(row: StepRun) -> BranchOutcome:
    if row.status == StepRunStatus.FAILED:
        error = (row.output or {}).get("error") or {
            "code": row.error_code,
            "message": row.error_message,
        }
        return BranchOutcome(False, None, error)
    stored = row.output or {}
    return BranchOutcome(
        bool(stored.get("passed")), stored.get("output"), None, stored.get("context_updates") or {}
    )


# --- helpers --------------------------------------------------------------------------------
def apply_records(attempt: StepAttempt) -> None:
    if attempt.records is not None:
        attempt.records.apply()


def _with_log(output: Any, attempt: StepAttempt) -> Any:
    if not attempt.log_lines or not isinstance(output, dict):
        return output
    return {**output, "log": list(attempt.log_lines)}


def step_metric(applied: Applied, attempt: StepAttempt, status: StepRunStatus) -> None:
    run = attempt.run
    seconds = (run.duration_ms or 0) / 1000 if run is not None else 0.0
    slug, name = attempt.workflow_slug, attempt.step.id
    applied.after_commit.append(lambda: metrics.record_step(slug, name, status.value, seconds))
