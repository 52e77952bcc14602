"""Recording a step's result and the execution's next state, in the caller's transaction.

Every function here adds to a `tasks.recording.Recording`: the execution's
columns as engine.lifecycle decides them, the attempt's step run, the tickets,
an approval or a wait. The caller writes it once (`Recording.write`, one
statement of models.writer), having read the execution under its row lock or,
for an optimistic attempt, unlocked (the write then applies only if the row is
unchanged). What is to happen after the commit (tickets to publish, metrics to
record) comes back in `Applied`, so a transaction that rolls back publishes
nothing.
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
from monitoring import metrics
from tasks.applied import Applied
from tasks.dispatch import new_ticket
from tasks.locking import RunState
from tasks.recording import Recording, new_id
from tasks.stepping import StepAttempt, retry_rng

S = ExecutionStatus
DEFAULT_APPROVER_ROLE = "admin"
ENDED_RUNS = (StepRunStatus.COMPLETED, StepRunStatus.FAILED)


def current_result(execution: Any) -> ExecutionResult | None:
    return ExecutionResult(execution.result) if execution.result else None


# --- step results ---------------------------------------------------------------------------
def apply_outcome(
    rec: Recording, attempt: StepAttempt, outcome: StepOutcome, now: datetime
) -> Applied:
    output = _with_log(outcome.output, attempt)
    status = StepRunStatus.COMPLETED
    if attempt.branch_key:
        branch = BranchOutcome.from_outcome(outcome)
        attempt.finish_run(
            rec, status, now, input=outcome.input, output=branch_output(branch, output)
        )
        apply_records(attempt)
        applied = Applied("branch_completed")
        step_metric(applied, attempt, status)
        # As the join would read it back from the row it is writing (the log included).
        ended = BranchOutcome(branch.passed, output, None, dict(branch.context_updates))
        return _maybe_join(rec, attempt, ended, now, applied)
    attempt.finish_run(rec, status, now, input=outcome.input, output=output)
    apply_records(attempt)
    context = deep_merge(
        deep_merge(attempt.context, attempt.extra_updates), outcome.context_updates
    )
    decision = decide_after_success(
        attempt.definition, attempt.step, outcome, current_result(rec.current)
    )
    applied = Applied("completed")
    step_metric(applied, attempt, status)
    return apply_decision(rec, attempt, decision, now, applied, context=context)


def apply_failure(rec: Recording, attempt: StepAttempt, error: StepError, now: datetime) -> Applied:
    attempt.finish_run(
        rec,
        StepRunStatus.FAILED,
        now,
        output=_with_log({"error": error.to_dict()}, attempt),
        error_message=error.message,
        error_code=error.code[:50],
    )
    applied = Applied("failed")
    step_metric(applied, attempt, StepRunStatus.FAILED)
    if attempt.branch_key:
        due = retry_due(attempt.step, error, attempt.attempt, now, retry_rng)
        if due is not None:
            retry = RetryAt(step_id=attempt.step.id, due=due, attempt=attempt.attempt + 1)
            return schedule_retry(rec, attempt, retry, now, applied)
        failed = BranchOutcome(False, None, error.to_dict())
        return _maybe_join(rec, attempt, failed, now, applied)
    context = deep_merge(attempt.context, attempt.extra_updates)
    decision = decide_after_failure(
        attempt.definition,
        attempt.step,
        error,
        attempt.attempt,
        now,
        retry_rng,
        current_result=current_result(rec.current),
    )
    return apply_decision(rec, attempt, decision, now, applied, context=context)


def fail_execution(rec: Recording, now: datetime, definition: Definition) -> Applied:
    """The workflow timeout ran out (sweeper or a late step)."""
    applied = Applied("timed_out")
    _finish(rec, definition, time_out(definition), now, applied)
    return applied


# --- decisions ------------------------------------------------------------------------------
def apply_decision(
    rec: Recording,
    attempt: StepAttempt,
    decision: Decision,
    now: datetime,
    applied: Applied,
    *,
    context: dict[str, Any] | None = None,
) -> Applied:
    """Record the decision, with `context` (the step's context, when the caller changed
    it) as the base the decision's updates merge into."""
    definition = attempt.definition
    base = rec.current.context if context is None else context
    if isinstance(decision, RetryAt):
        return schedule_retry(rec, attempt, decision, now, applied, context=context)
    if isinstance(decision, Finish):
        _finish(rec, definition, decision, now, applied, context=base)
        return applied
    if isinstance(decision, Continue):
        rec.change(lifecycle.continue_to(rec.current, decision, now, definition.timeout))
        rec.change({"context": deep_merge(base, decision.context_updates)})
        if rec.current.status != S.PAUSED:
            step = definition.step(decision.step_id)
            applied.tickets.append(ticket_step(rec, definition, step, now))
        return applied
    if isinstance(decision, AwaitApproval):
        _create_approval(rec, attempt, decision, now, applied)
    elif isinstance(decision, Wait):
        _create_wait(rec, decision, now)
    rec.change(lifecycle.park(rec.current, decision, now, definition.timeout))
    if context is not None:
        rec.change({"context": base})
    applied.label = "waiting"
    return applied


def wake(  # noqa: PLR0917 - the wake-up's parts, in the order the callers have them
    session: Session,
    execution: Execution,
    definition: Definition,
    step: Step,
    decision: Decision,
    now: datetime,
    applied: Applied,
    context: dict[str, Any] | None = None,
) -> Applied:
    """Wake a waiting (or paused-while-waiting) execution at `step` and carry out the
    decision an event, a timer or an approval led to, in one write."""
    rec = Recording(session, execution)
    rec.change(lifecycle.wake(execution, now, definition.timeout))
    base = dict(execution.context if context is None else context)
    attempt = StepAttempt(execution, definition, step, "", 1, None, now, base)
    apply_decision(rec, attempt, decision, now, applied, context=context)
    rec.write(session.connection())
    return applied


def ticket_step(
    rec: Recording,
    definition: Definition,
    step: Step,
    now: datetime,
    *,
    branch_key: str = "",
    attempt: int = 1,
    due_at: datetime | None = None,
) -> DispatchOutbox:
    """Add a ticket for this step of the execution to the recording.

    Without `due_at` the caller publishes it after commit and the relay only
    steps in after REDELIVERY_GRACE; with `due_at` (a retry backoff) the relay
    publishes it when it falls due.
    """
    execution = rec.execution
    return rec.add_ticket(
        new_ticket(
            organization_id=execution.organization_id,
            execution_id=execution.id,
            definition=definition,
            step=step,
            now=now,
            attempt_group=rec.current.attempt_group,
            attempt=attempt,
            branch_key=branch_key,
            due_at=due_at,
        )
    )


def schedule_retry(
    rec: Recording,
    attempt: StepAttempt,
    decision: RetryAt,
    now: datetime,
    applied: Applied,
    *,
    context: dict[str, Any] | None = None,
) -> Applied:
    execution = rec.current
    rec.add(
        StepRun,
        {
            "id": new_id(),
            "step_id": attempt.step.id,
            "step_type": attempt.step.type,
            "branch_key": attempt.branch_key,
            "attempt_group": execution.attempt_group,
            "attempt": decision.attempt,
            "status": StepRunStatus.PENDING.value,
            "due_at": decision.due,
        },
    )
    if execution.status != S.PAUSED:
        applied.tickets.append(
            ticket_step(
                rec,
                attempt.definition,
                attempt.step,
                now,
                branch_key=attempt.branch_key,
                attempt=decision.attempt,
                due_at=decision.due,
            )
        )
    rec.change(lifecycle.retry_later(execution, decision.due, now))
    if context is not None:
        rec.change({"context": context})
    applied.label = "retry_scheduled"
    slug, name = execution.workflow_id, attempt.step.id
    applied.after_commit.append(lambda: metrics.record_step_retry(slug, name))
    return applied


def _finish(
    rec: Recording,
    definition: Definition,
    decision: Finish,
    now: datetime,
    applied: Applied,
    *,
    context: dict[str, Any] | None = None,
) -> None:
    changes = lifecycle.finish(rec.current, decision, now, definition.timeout)
    context = rec.current.context if context is None else context
    rec.change({**changes, "context": deep_merge(context, decision.context_updates)})
    applied.label = decision.status.value
    execution = rec.current
    slug, trigger, status = execution.workflow_id, execution.trigger_type, decision.status.value
    error_type, seconds = changes.get("error_type"), (changes.get("duration_ms") or 0) / 1000
    applied.after_commit.append(
        lambda: metrics.record_execution_finished(slug, status, trigger, seconds, error_type)
    )


def _create_approval(
    rec: Recording, attempt: StepAttempt, decision: AwaitApproval, now: datetime, applied: Applied
) -> None:
    execution = rec.current
    request = decision.request
    approval_id = attempt.approval_id
    if approval_id is not None and rec.session.get(Approval, approval_id) is not None:
        return  # the same attempt group already asked (a re-run after a crash)
    rec.add(
        Approval,
        {
            "id": approval_id if approval_id is not None else new_id(),
            "workflow_id": execution.workflow_id,
            "step_id": decision.step_id,
            "attempt_group": execution.attempt_group,
            "entity_type": request.entity,
            "entity_id": request.entity_id,
            "approver_role": request.approver_role or DEFAULT_APPROVER_ROLE,
            "status": "pending",
            "reason": request.reason,
            "data": {**dict(request.data), "request": request.to_dict()},
            "requested_at": now,
            "expires_at": request.expires_at(now),
        },
    )
    slug = execution.workflow_id
    applied.after_commit.append(lambda: metrics.record_approval(slug, "requested"))


def _create_wait(rec: Recording, decision: Wait, now: datetime) -> None:
    request = decision.request
    rec.add(
        WaitRow,
        {
            "id": new_id(),
            "step_id": decision.step_id,
            "attempt_group": rec.current.attempt_group,
            "kind": "event" if request.is_for_event else "timer",
            "event_type": request.event,
            "match": dict(request.match) if request.match is not None else None,
            "due_at": request.due_at(now),
            "status": "waiting",
        },
    )


# --- parallel -------------------------------------------------------------------------------
def fan_out(rec: Recording, attempt: StepAttempt, now: datetime) -> Applied:
    """Start a parallel step: its own step-run row stays running until the join."""
    attempt.mark_running(rec, now)
    applied = Applied("fanned_out")
    context = deep_merge(attempt.context, attempt.extra_updates)
    rec.change({**lifecycle.touch(rec.current, now), "context": context})
    for branch in plan_parallel(attempt.step):
        branch_key = f"{attempt.step.id}/{branch.id}"
        applied.tickets.append(
            ticket_step(rec, attempt.definition, branch, now, branch_key=branch_key)
        )
    return applied


def parent_step_id(branch_key: str) -> str:
    return branch_key.split("/", 1)[0]


def latest_run(session: Session, execution: Any, step: Step) -> StepRun | None:
    """The step's own latest step-run row (not a branch's) in the execution's attempt group."""
    return session.scalars(
        select(StepRun)
        .where(
            StepRun.execution_id == execution.id,
            StepRun.step_id == step.id,
            StepRun.branch_key == "",
            StepRun.attempt_group == execution.attempt_group,
        )
        .order_by(StepRun.attempt.desc())
        .limit(1)
    ).first()


def _maybe_join(
    rec: Recording, attempt: StepAttempt, ended: BranchOutcome, now: datetime, applied: Applied
) -> Applied:
    """Join once every branch ended (`ended`: how this one did, not yet written); the
    execution row lock makes exactly one branch do it."""
    parent = attempt.definition.step(parent_step_id(attempt.branch_key))
    parent_run = latest_run(rec.session, rec.current, parent)
    if parent_run is None or parent_run.status != StepRunStatus.RUNNING:
        return applied
    outcomes = _branch_outcomes(rec, parent, {attempt.step.id: ended})
    if outcomes is None:
        rec.change(lifecycle.touch(rec.current, now))
        return applied
    join = join_parallel(parent, outcomes)
    return apply_join(rec, attempt, parent, run_state(parent_run), join, now=now, applied=applied)


def apply_join(
    rec: Recording,
    attempt: StepAttempt,
    step: Step,
    parent_run: tuple[RunState, int],
    join: JoinDecision,
    *,
    now: datetime,
    applied: Applied,
) -> Applied:
    """Close a fan-out step's run (its row and attempt number) with its join (parallel
    or foreach) and route the flow."""
    execution = rec.current
    run, number = parent_run
    parent_attempt = StepAttempt(
        execution,
        attempt.definition,
        step,
        "",
        number,
        run,
        run.started_at or now,
        dict(execution.context),
    )
    status = StepRunStatus.COMPLETED if join.passed else StepRunStatus.FAILED
    parent_attempt.finish_run(rec, status, now, output=join.to_dict(), error_message=join.message)
    step_metric(applied, parent_attempt, status)
    decision = decide_after_join(attempt.definition, step, join, current_result(execution))
    applied.label = "joined"
    return apply_decision(rec, parent_attempt, decision, now, applied)


def _branch_outcomes(
    rec: Recording, parent: Step, ended_now: dict[str, BranchOutcome]
) -> dict[str, BranchOutcome] | None:
    latest = latest_branch_runs(rec.session, rec.current, parent.id)
    outcomes: dict[str, BranchOutcome] = {}
    for branch in plan_parallel(parent):
        if branch.id in ended_now:
            outcomes[branch.id] = ended_now[branch.id]
            continue
        ended = latest.get(f"{parent.id}/{branch.id}")
        if ended is None or ended.status not in ENDED_RUNS:
            return None
        outcomes[branch.id] = _branch_from_row(ended)
    return outcomes


def latest_branch_runs(session: Session, execution: Any, parent_id: str) -> dict[str, StepRun]:
    """The latest attempt's step-run row of each branch (or foreach item) of the fan-out
    step `parent_id` in the execution's attempt group, by branch key."""
    rows = session.scalars(
        select(StepRun).where(
            StepRun.execution_id == execution.id,
            StepRun.branch_key.startswith(f"{parent_id}/", autoescape=True),
            StepRun.attempt_group == execution.attempt_group,
        )
    ).all()
    latest: dict[str, StepRun] = {}
    for row in rows:
        if row.branch_key not in latest or row.attempt > latest[row.branch_key].attempt:
            latest[row.branch_key] = row
    return latest


def run_state(row: StepRun) -> tuple[RunState, int]:
    """A step-run row as the step path holds it, and its attempt number."""
    return RunState(row.id, row.status, row.started_at, row.due_at), row.attempt


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
    seconds = attempt.duration_ms / 1000
    slug, name = attempt.workflow_slug, attempt.step.id
    applied.after_commit.append(lambda: metrics.record_step(slug, name, status.value, seconds))
