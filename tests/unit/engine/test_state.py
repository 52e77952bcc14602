import json

import pytest

from engine.state import (
    ACTIVE_STATES,
    FINISHED_STATES,
    ApprovalStatus,
    ExecutionResult,
    ExecutionStatus,
    StepRunStatus,
    can_transition,
)


def test_every_execution_status_is_either_active_or_finished():
    assert set(ExecutionStatus) == ACTIVE_STATES | FINISHED_STATES
    assert not ACTIVE_STATES & FINISHED_STATES


def test_states_serialise_as_plain_strings():
    assert (
        json.dumps([ExecutionStatus.WAITING, ExecutionResult.BLOCKED]) == '["waiting", "blocked"]'
    )


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (ExecutionStatus.PENDING, ExecutionStatus.RUNNING),
        (ExecutionStatus.RUNNING, ExecutionStatus.WAITING),
        (ExecutionStatus.WAITING, ExecutionStatus.RUNNING),
        (ExecutionStatus.WAITING, ExecutionStatus.COMPLETED),
        (ExecutionStatus.PAUSED, ExecutionStatus.WAITING),
        (ExecutionStatus.FAILED, ExecutionStatus.RUNNING),
        (StepRunStatus.RUNNING, StepRunStatus.COMPLETED),
        (ApprovalStatus.PENDING, ApprovalStatus.EXPIRED),
    ],
)
def test_allowed_transitions(src, dst):
    assert can_transition(src, dst)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (ExecutionStatus.COMPLETED, ExecutionStatus.RUNNING),
        (ExecutionStatus.CANCELLED, ExecutionStatus.RUNNING),
        (ExecutionStatus.RUNNING, ExecutionStatus.RUNNING),
        (ExecutionStatus.RUNNING, ExecutionStatus.PENDING),
        (StepRunStatus.COMPLETED, StepRunStatus.FAILED),
        (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED),
        (ExecutionStatus.PENDING, StepRunStatus.RUNNING),
    ],
)
def test_forbidden_transitions(src, dst):
    assert not can_transition(src, dst)
