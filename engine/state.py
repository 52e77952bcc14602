"""Lifecycle states of executions, step runs and approvals, with their transitions.

Every enum is a ``StrEnum`` so values serialise as plain strings. Transitions are
tables, not scattered ``if``s: the shell asks ``can_transition`` before every
compare-and-set on a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ExecutionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ExecutionResult(StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    EXECUTED = "executed"
    FAILED = "failed"


class ErrorType(StrEnum):
    TIMEOUT = "timeout"
    STEP_ERROR = "step_error"
    CONTEXT_ERROR = "context_error"
    CANCELLED = "cancelled"


class StepRunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


FINISHED_STATES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
ACTIVE_STATES = frozenset(
    {
        ExecutionStatus.PENDING,
        ExecutionStatus.RUNNING,
        ExecutionStatus.WAITING,
        ExecutionStatus.PAUSED,
    }
)
# Waiting and paused executions hold no worker; the workflow timeout does not
# count time spent in them (SPEC §2 Timeouts).
IDLE_STATES = frozenset({ExecutionStatus.WAITING, ExecutionStatus.PAUSED})
STEP_RUN_FINISHED_STATES = frozenset(
    {StepRunStatus.COMPLETED, StepRunStatus.FAILED, StepRunStatus.SKIPPED}
)
APPROVAL_DECIDED_STATES = frozenset(
    {ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.EXPIRED}
)

_E = ExecutionStatus
EXECUTION_TRANSITIONS: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    _E.PENDING: frozenset({_E.RUNNING, _E.PAUSED, _E.FAILED, _E.CANCELLED}),
    # RUNNING -> COMPLETED/FAILED covers the last step; -> WAITING covers
    # approvals, waits and scheduled retries.
    _E.RUNNING: frozenset({_E.WAITING, _E.PAUSED, _E.COMPLETED, _E.FAILED, _E.CANCELLED}),
    # An approval decision or a wait timeout can finish the execution directly.
    _E.WAITING: frozenset({_E.RUNNING, _E.PAUSED, _E.COMPLETED, _E.FAILED, _E.CANCELLED}),
    # Resume returns to whatever the execution was doing before the pause; the step
    # in flight when it was paused may still end the flow (completed or failed).
    _E.PAUSED: frozenset({_E.RUNNING, _E.WAITING, _E.CANCELLED, _E.COMPLETED, _E.FAILED}),
    _E.COMPLETED: frozenset(),
    # POST /executions/{id}/retry re-runs a failed execution from its failed step.
    _E.FAILED: frozenset({_E.PENDING, _E.RUNNING}),
    _E.CANCELLED: frozenset(),
}

_S = StepRunStatus
STEP_RUN_TRANSITIONS: Mapping[StepRunStatus, frozenset[StepRunStatus]] = {
    _S.PENDING: frozenset({_S.RUNNING, _S.SKIPPED, _S.FAILED}),
    _S.RUNNING: frozenset({_S.COMPLETED, _S.FAILED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.SKIPPED: frozenset(),
}

_A = ApprovalStatus
APPROVAL_TRANSITIONS: Mapping[ApprovalStatus, frozenset[ApprovalStatus]] = {
    _A.PENDING: frozenset({_A.APPROVED, _A.REJECTED, _A.EXPIRED}),
    _A.APPROVED: frozenset(),
    _A.REJECTED: frozenset(),
    _A.EXPIRED: frozenset(),
}


def can_transition(
    src: ExecutionStatus | StepRunStatus | ApprovalStatus,
    dst: ExecutionStatus | StepRunStatus | ApprovalStatus,
) -> bool:
    """Whether ``src -> dst`` is allowed. Staying in the same state is not a transition.

    The table is chosen by the type of ``src`` (StrEnum members of different
    enums compare equal by value, so one shared dict would mix them up).
    """
    if type(src) is not type(dst):
        return False
    if isinstance(src, ExecutionStatus):
        return dst in EXECUTION_TRANSITIONS[src]
    if isinstance(src, StepRunStatus):
        return dst in STEP_RUN_TRANSITIONS[src]
    return dst in APPROVAL_TRANSITIONS[src]
