"""Foreach steps: one task per item, at most `concurrency` in flight, joined once, in item order.

The foreach step's own step-run row stays `running` while its items run; its
`input` holds the planned items (rendered once, when the step started) and
its `output` how many were dispatched. Each item runs the step's body in order
in one task (branch key `<foreach id>/<index>`), with its effects keyed by
item and body step, so a retried item replays what already succeeded. A body
step with a `retry` policy retries the whole item (same keys). Whichever item
ends last, under the execution row lock, dispatches nothing more and joins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine import lifecycle
from engine.context import deep_merge
from engine.definition import Definition, Step
from engine.errors import StepError
from engine.executor import run_step
from engine.fanout import foreach_body, item_outcome, join_foreach, plan_foreach
from engine.machine import RetryAt, idempotency_key, retry_due
from engine.outcome import BranchOutcome, JoinDecision, StepOutcome
from engine.port import StepPorts
from engine.state import StepRunStatus
from engine.templating import TemplateRenderer
from models.execution import DispatchOutbox, StepRun
from tasks.applied import Applied
from tasks.recording import Recording
from tasks.stepping import StepAttempt, retry_rng
from tasks.transition import (
    ENDED_RUNS,
    apply_join,
    apply_records,
    branch_output,
    latest_branch_runs,
    latest_run,
    run_state,
    schedule_retry,
    step_metric,
    ticket_step,
)


@dataclass(frozen=True)
class ItemResult:
    """How one item's body ran: the outcome to join, and the failure if any."""

    index: int
    outcome: BranchOutcome
    failed_step: Step | None = None
    error: StepError | None = None


def item_key(step_id: str, index: int) -> str:
    return f"{step_id}/{index}"


def item_index(branch_key: str) -> int:
    return int(branch_key.rsplit("/", 1)[1])


def is_item(step: Step, branch_key: str) -> bool:
    return step.type == "foreach" and bool(branch_key)


# --- starting -------------------------------------------------------------------------------
def start_foreach(
    rec: Recording, attempt: StepAttempt, renderer: TemplateRenderer, now: datetime
) -> Applied:
    """Plan the items (StepError if the list does not render) and dispatch the first ones."""
    step = attempt.step
    assert step.foreach is not None
    overlays = plan_foreach(step, attempt.context, renderer)
    attempt.mark_running(rec, now)
    assert attempt.run is not None
    first = min(max(step.foreach.concurrency, 1), len(overlays))
    rec.set(
        StepRun, attempt.run.id, {"input": {"items": overlays}, "output": {"dispatched": first}}
    )
    context = deep_merge(attempt.context, attempt.extra_updates)
    rec.change({**lifecycle.touch(rec.current, now), "context": context})
    applied = Applied("fanned_out")
    if not overlays:
        join = join_foreach(step, [])
        return _join_started(rec, attempt, join, now, applied)
    for index in range(first):
        applied.tickets.append(_ticket_item(rec, attempt, index, now))
    return applied


def _join_started(
    rec: Recording, attempt: StepAttempt, join: JoinDecision, now: datetime, applied: Applied
) -> Applied:
    """An empty list joins at once: the step's own run, just recorded, closes."""
    assert attempt.run is not None
    parent = (attempt.run, attempt.attempt)
    return apply_join(rec, attempt, attempt.step, parent, join, now=now, applied=applied)


def _ticket_item(rec: Recording, attempt: StepAttempt, index: int, now: datetime) -> DispatchOutbox:
    step = attempt.step
    return ticket_step(rec, attempt.definition, step, now, branch_key=item_key(step.id, index))


# --- running one item -----------------------------------------------------------------------
def run_item(
    session: Session,
    attempt: StepAttempt,
    ports: StepPorts,
    renderer: TemplateRenderer,
    rules: Any,
) -> ItemResult:
    """Run the item's body in order; stops at the first failure or false condition."""
    index = item_index(attempt.branch_key)
    parent = latest_run(session, attempt.execution, attempt.step)
    overlays = (parent.input or {}).get("items") if parent is not None else None
    if not overlays or index >= len(overlays):
        error = StepError(
            "validation", f"foreach item {index} has no planned value", retryable=False
        )
        return ItemResult(index, BranchOutcome.from_error(error), attempt.step, error)
    context = deep_merge(attempt.context, overlays[index])
    execution = attempt.execution
    ran: list[tuple[str, StepOutcome | StepError]] = []
    for body in foreach_body(attempt.step):
        key = idempotency_key(
            str(execution.id), f"{attempt.step.id}[{index}]/{body.id}", execution.attempt_group
        )
        try:
            outcome = run_step(body, context, ports, renderer, rules=rules, idempotency_key=key)
        except StepError as exc:
            ran.append((body.id, exc))
            return ItemResult(index, item_outcome(ran), body, exc)
        ran.append((body.id, outcome))
        context = deep_merge(context, outcome.context_updates)
        if outcome.condition_result is False:
            break
    return ItemResult(index, item_outcome(ran))


def apply_item(rec: Recording, attempt: StepAttempt, result: ItemResult, now: datetime) -> Applied:
    """Record the item; retry it, dispatch the next item, or join."""
    failed = result.error is not None or not result.outcome.passed
    status = StepRunStatus.FAILED if failed else StepRunStatus.COMPLETED
    output = branch_output(result.outcome, result.outcome.output)
    if result.error is not None:
        output["error"] = result.error.to_dict()
    attempt.finish_run(
        rec,
        status,
        now,
        input={"index": result.index},
        output=output,
        error_message=None if result.error is None else result.error.message,
        error_code=None if result.error is None else result.error.code[:50],
    )
    if not failed:
        apply_records(attempt)
    applied = Applied("item_completed" if not failed else "item_failed")
    step_metric(applied, attempt, status)
    if result.error is not None and result.failed_step is not None:
        due = retry_due(result.failed_step, result.error, attempt.attempt, now, retry_rng)
        if due is not None:
            retry = RetryAt(step_id=attempt.step.id, due=due, attempt=attempt.attempt + 1)
            return schedule_retry(rec, attempt, retry, now, applied)
    ended = _outcome_of(status, output)
    return _after_item(rec, attempt, result.index, ended, now, applied)


def _after_item(  # noqa: PLR0917 - the item and how it ended, as apply_item has them
    rec: Recording,
    attempt: StepAttempt,
    index: int,
    ended: BranchOutcome,
    now: datetime,
    applied: Applied,
) -> Applied:
    step = attempt.step
    parent = latest_run(rec.session, rec.current, step)
    if parent is None or parent.status != StepRunStatus.RUNNING:
        return applied  # joined already
    overlays = (parent.input or {}).get("items") or []
    dispatched = int((parent.output or {}).get("dispatched", 0))
    rec.change(lifecycle.touch(rec.current, now))
    if dispatched < len(overlays) and rec.current.status != "paused":
        applied.tickets.append(_ticket_item(rec, attempt, dispatched, now))
        rec.set(StepRun, parent.id, {"output": {"dispatched": dispatched + 1}})
        return applied
    outcomes = _item_outcomes(rec, step, len(overlays), {index: ended})
    if outcomes is None:
        return applied
    join = join_foreach(step, outcomes)
    return apply_join(rec, attempt, step, run_state(parent), join, now=now, applied=applied)


def _item_outcomes(
    rec: Recording, step: Step, count: int, ended_now: dict[int, BranchOutcome]
) -> list[BranchOutcome] | None:
    latest = latest_branch_runs(rec.session, rec.current, step.id)
    outcomes = []
    for index in range(count):
        if index in ended_now:
            outcomes.append(ended_now[index])
            continue
        ended = latest.get(item_key(step.id, index))
        if ended is None or ended.status not in ENDED_RUNS:
            return None
        outcomes.append(_outcome_of(StepRunStatus(ended.status), ended.output or {}))
    return outcomes


def _outcome_of(status: StepRunStatus, stored: dict[str, Any]) -> BranchOutcome:
    """An item's outcome as its step-run row records it."""
    return BranchOutcome(
        bool(stored.get("passed")) and status == StepRunStatus.COMPLETED,
        stored.get("output"),
        stored.get("error"),
        stored.get("context_updates") or {},
    )


# --- resuming -------------------------------------------------------------------------------
def reticket_unfinished(
    rec: Recording,
    definition: Definition,
    step: Step,
    parent: StepRun,
    *,
    now: datetime,
) -> list[DispatchOutbox]:
    """Tickets for the branches or items of a running fan-out that have not ended
    (after a pause, whose deliveries were spent, or when the sweeper finds it stuck)."""
    if step.type == "parallel":
        keys = {f"{step.id}/{branch.id}": branch for branch in step.body}
    else:
        dispatched = int((parent.output or {}).get("dispatched", 0))
        keys = {item_key(step.id, index): step for index in range(dispatched)}
    latest = latest_branch_runs(rec.session, rec.current, step.id)
    tickets = []
    for branch_key, target in keys.items():
        last = latest.get(branch_key)
        if last is not None and last.status in ENDED_RUNS:
            continue
        attempt = last.attempt if last is not None else 1
        tickets.append(
            ticket_step(rec, definition, target, now, branch_key=branch_key, attempt=attempt)
        )
    return tickets
