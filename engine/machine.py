"""The execution state machine: given this state and this step result, what next.

Every function is pure: time (``now``) and randomness (``rng``) are passed in,
and the answer is a ``Decision`` the shell carries out (dispatch a step,
finish, wait, await an approval, schedule a retry).

The execution's result: each step that sets one (allow -> allowed, block ->
blocked, execute -> executed) overrides the previous; when the flow ends the
execution completes with the last result set, or ``allowed`` when no step set
one (nothing blocked it). An approval settles a provisional ``block``: once
approved the result is ``allowed``.

Every decision but ``RetryAt`` carries ``context_updates`` (the step's output,
``set`` values, the error routed to ``on_error``, a join's outputs): the shell
deep-merges them into the execution context in the same transaction as the
state change. Approval decisions and waited-for events are merged by the shell
itself (``context.approval_context``, ``context.merge_event``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.context import deep_merge, error_context
from engine.definition import Definition, Step
from engine.errors import EngineError, StepError
from engine.outcome import ApprovalRequest, JoinDecision, StepOutcome, WaitRequest
from engine.state import ApprovalStatus, ErrorType, ExecutionResult, ExecutionStatus

__all__ = [
    "DEFAULT_RESULT",
    "AwaitApproval",
    "Continue",
    "Decision",
    "Finish",
    "RetryAt",
    "Wait",
    "cancel",
    "decide_after_approval",
    "decide_after_failure",
    "decide_after_join",
    "decide_after_success",
    "decide_after_wait",
    "deep_merge",
    "final_result",
    "idempotency_key",
    "retry_due",
    "time_out",
]

DEFAULT_RESULT = ExecutionResult.ALLOWED


@dataclass(frozen=True)
class Continue:
    """Run ``step_id`` next. ``result`` is the execution's result so far;
    ``context_updates`` are to be deep-merged into the context first."""

    step_id: str
    result: ExecutionResult | None = None
    context_updates: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"decision": "continue", "step_id": self.step_id, "result": _value(self.result)}


@dataclass(frozen=True)
class Finish:
    status: ExecutionStatus
    result: ExecutionResult | None
    error_type: ErrorType | None = None
    message: str | None = None
    context_updates: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": "finish",
            "status": self.status.value,
            "result": _value(self.result),
            "error_type": _value(self.error_type),
            "message": self.message,
        }


@dataclass(frozen=True)
class Wait:
    """Park the execution (status ``waiting``) on ``step_id`` until the event or time."""

    step_id: str
    request: WaitRequest
    result: ExecutionResult | None = None
    context_updates: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": "wait",
            "step_id": self.step_id,
            "request": self.request.to_dict(),
            "result": _value(self.result),
        }


@dataclass(frozen=True)
class AwaitApproval:
    """Create the approval and park the execution (``waiting``) until it is decided.
    ``result`` is the provisional result (e.g. ``blocked``) until then."""

    step_id: str
    request: ApprovalRequest
    result: ExecutionResult | None = None
    context_updates: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": "await_approval",
            "step_id": self.step_id,
            "request": self.request.to_dict(),
            "result": _value(self.result),
        }


@dataclass(frozen=True)
class RetryAt:
    """Run the step again at ``due`` as attempt number ``attempt`` (same attempt group)."""

    due: datetime
    attempt: int
    step_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": "retry",
            "step_id": self.step_id,
            "due": self.due.isoformat(),
            "attempt": self.attempt,
        }


Decision = Continue | Finish | Wait | AwaitApproval | RetryAt


def _value(member: ExecutionResult | ErrorType | None) -> str | None:
    return None if member is None else member.value


def final_result(current_result: ExecutionResult | None) -> ExecutionResult:
    """The result an execution completes with when its flow ends normally."""
    return current_result if current_result is not None else DEFAULT_RESULT


def idempotency_key(execution_id: str, step_id: str, attempt_group: int | str) -> str:
    """Key for a step's side effects: the same for every automatic retry of the step."""
    return f"{execution_id}:{step_id}:{attempt_group}"


def _go_to(
    definition: Definition,
    step_id: str | None,
    result: ExecutionResult | None,
    *,
    updates: Mapping[str, Any] | None = None,
    message: str | None = None,
) -> Continue | Finish:
    if step_id is None:
        return Finish(
            ExecutionStatus.COMPLETED,
            final_result(result),
            message=message,
            context_updates=dict(updates or {}),
        )
    if not definition.has_step(step_id):
        raise EngineError(f"the definition has no step {step_id!r}")
    return Continue(step_id, result, dict(updates or {}))


def decide_after_success(
    definition: Definition,
    step: Step,
    outcome: StepOutcome,
    current_result: ExecutionResult | None,
) -> Decision:
    """What follows a step that ran without error."""
    result = outcome.result if outcome.result is not None else current_result
    updates = outcome.context_updates
    if outcome.approval is not None:
        return AwaitApproval(step.id, outcome.approval, result, dict(updates))
    if outcome.wait is not None:
        return Wait(step.id, outcome.wait, result, dict(updates))
    return _go_to(definition, outcome.next_step_id, result, updates=updates, message=outcome.reason)


def retry_due(
    step: Step, error: StepError, attempt: int, now: datetime, rng: Callable[[], float]
) -> datetime | None:
    """When to retry a failed attempt (1-based ``attempt``), or None: no more retries."""
    policy = step.retry
    if policy is None or attempt >= policy.max_attempts or not policy.applies_to(error):
        return None
    return now + policy.delay(attempt, rng)


# The positional signature is the one the task layer codes against.
def decide_after_failure(  # noqa: PLR0917
    definition: Definition,
    step: Step,
    error: StepError,
    attempt: int,
    now: datetime,
    rng: Callable[[], float],
    *,
    current_result: ExecutionResult | None = None,
) -> Decision:
    """What follows a failed attempt: retry, ``on_error``, or fail the execution."""
    due = retry_due(step, error, attempt, now, rng)
    if due is not None:
        return RetryAt(due, attempt + 1, step.id)
    updates = error_context(step.id, {**error.to_dict(), "attempts": attempt})
    if step.on_error is not None:
        return _go_to(definition, step.on_error, current_result, updates=updates)
    return Finish(
        ExecutionStatus.FAILED,
        ExecutionResult.FAILED,
        ErrorType.TIMEOUT if error.code == "timeout" else ErrorType.STEP_ERROR,
        f"step {step.id!r} failed after {attempt} attempt(s): {error.message}",
        updates,
    )


def decide_after_join(
    definition: Definition,
    step: Step,
    join: JoinDecision,
    current_result: ExecutionResult | None,
) -> Decision:
    """What follows a parallel or foreach step once every branch has ended."""
    if join.passed:
        return _go_to(definition, step.next, current_result, updates=join.context_updates)
    error = {"code": "join_failed", "message": join.message, "failed": list(join.failed)}
    updates = deep_merge(join.context_updates, error_context(step.id, error))
    if step.on_error is not None:
        return _go_to(definition, step.on_error, current_result, updates=updates)
    return Finish(
        ExecutionStatus.FAILED,
        ExecutionResult.FAILED,
        ErrorType.STEP_ERROR,
        join.message,
        updates,
    )


def decide_after_approval(
    definition: Definition,
    step: Step,
    status: ApprovalStatus,
    current_result: ExecutionResult | None,
) -> Decision:
    """What follows an approval decision (SPEC §2 Approvals).

    approved: ``on_approve``, else ``next``, else complete ``allowed``;
    rejected: ``on_reject``, else complete ``blocked``;
    expired: ``on_timeout``, else complete ``blocked`` with ``error_type=timeout``.
    The caller records the decision in the context (``context.approval_context``).
    """
    if status is ApprovalStatus.APPROVED:
        # The approval settles the step's provisional block.
        settled = (
            ExecutionResult.ALLOWED
            if current_result in (None, ExecutionResult.BLOCKED)
            else current_result
        )
        target = step.on_approve or step.next
        if target is None:
            return Finish(ExecutionStatus.COMPLETED, ExecutionResult.ALLOWED, message="approved")
        return _go_to(definition, target, settled)
    if status is ApprovalStatus.REJECTED:
        if step.on_reject is not None:
            return _go_to(definition, step.on_reject, ExecutionResult.BLOCKED)
        return Finish(
            ExecutionStatus.COMPLETED, ExecutionResult.BLOCKED, message="approval rejected"
        )
    if status is ApprovalStatus.EXPIRED:
        if step.on_timeout is not None:
            return _go_to(definition, step.on_timeout, ExecutionResult.BLOCKED)
        return Finish(
            ExecutionStatus.COMPLETED,
            ExecutionResult.BLOCKED,
            ErrorType.TIMEOUT,
            "approval expired",
        )
    raise EngineError(f"approval of step {step.id!r} is still {status.value}")


def decide_after_wait(
    definition: Definition,
    step: Step,
    timed_out: bool,
    current_result: ExecutionResult | None = None,
) -> Decision:
    """What follows a wait: the event came (or the time of a time wait came), or
    an event wait timed out (``on_timeout``, else fail with ``timeout``).

    The caller merges the event into the context first (``context.merge_event``).
    """
    if not timed_out:
        return _go_to(definition, step.next, current_result)
    if step.on_timeout is not None:
        return _go_to(definition, step.on_timeout, current_result)
    event = step.wait.event if step.wait is not None else None
    return Finish(
        ExecutionStatus.FAILED,
        ExecutionResult.FAILED,
        ErrorType.TIMEOUT,
        f"step {step.id!r} timed out waiting for event {event!r}",
    )


def time_out(definition: Definition) -> Finish:
    """The execution ran longer than the workflow timeout."""
    return Finish(
        ExecutionStatus.FAILED,
        ExecutionResult.FAILED,
        ErrorType.TIMEOUT,
        f"workflow timed out (limit {definition.timeout})",
    )


def cancel(message: str = "cancelled") -> Finish:
    return Finish(ExecutionStatus.CANCELLED, None, ErrorType.CANCELLED, message)
