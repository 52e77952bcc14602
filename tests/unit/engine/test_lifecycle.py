"""The execution lifecycle: status changes follow the transition table, the budget
counts only running time, and every change bumps the version once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from engine import lifecycle
from engine.lifecycle import TransitionError, after
from engine.machine import Continue, Finish, cancel, time_out
from engine.state import ErrorType, ExecutionResult, ExecutionStatus

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class Row:
    status: str = "running"
    result: str | None = None
    current_step_id: str | None = "a"
    attempt_group: int = 1
    version: int = 7
    started_at: datetime | None = NOW - timedelta(minutes=10)
    running_seconds: float = 0.0
    deadline_at: datetime | None = NOW + timedelta(minutes=50)


def test_a_step_starts_a_pending_execution_and_its_budget() -> None:
    changes = lifecycle.start_step(Row(status="pending", deadline_at=None), NOW, HOUR)
    assert changes == {"status": "running", "deadline_at": NOW + HOUR}


def test_continuing_moves_the_current_step_and_bumps_the_version_once() -> None:
    changes = lifecycle.continue_to(Row(), Continue("b", ExecutionResult.ALLOWED), NOW, HOUR)
    assert changes == {
        "current_step_id": "b",
        "result": "allowed",
        "heartbeat_at": NOW,
        "version": 8,
    }


def test_a_paused_execution_stays_paused_when_its_step_in_flight_moves_on() -> None:
    changes = lifecycle.continue_to(
        Row(status="paused", deadline_at=None), Continue("b"), NOW, HOUR
    )
    assert "status" not in changes
    assert "deadline_at" not in changes


def test_finishing_banks_the_running_time_and_records_the_end() -> None:
    decision = Finish(ExecutionStatus.COMPLETED, ExecutionResult.BLOCKED)
    changes = lifecycle.finish(Row(running_seconds=30.0), decision, NOW, HOUR)
    assert changes["status"] == "completed"
    assert changes["result"] == "blocked"
    assert changes["error_message"] is None
    assert changes["running_seconds"] == 600.0  # 60 min budget, 50 min left
    assert changes["deadline_at"] is None
    assert changes["completed_at"] == NOW
    assert changes["duration_ms"] == 600_000
    assert changes["version"] == 8


def test_waiting_does_not_spend_the_budget() -> None:
    parked = lifecycle.leave_running(Row(), NOW, HOUR)
    assert parked == {"running_seconds": 600.0, "deadline_at": None}
    later = NOW + timedelta(days=2)
    resumed = lifecycle.enter_running(after(Row(), parked), later, HOUR)
    assert resumed == {"deadline_at": later + timedelta(minutes=50)}


def test_a_timeout_fails_the_execution() -> None:
    from engine.definition import Definition

    definition = Definition.from_dict({"trigger": {"type": "manual"}, "steps": []})
    changes = lifecycle.finish(Row(), time_out(definition), NOW, HOUR)
    assert (changes["status"], changes["error_type"]) == ("failed", "timeout")


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_execution_cannot_finish_again(status: str) -> None:
    with pytest.raises(TransitionError):
        lifecycle.finish(Row(status=status), Finish(ExecutionStatus.COMPLETED, None), NOW, HOUR)


def test_pause_resume_and_cancel_are_idempotent() -> None:
    assert lifecycle.pause(Row(status="paused"), NOW, HOUR) is None
    assert lifecycle.resume(Row(status="running"), NOW, HOUR, waiting=False) is None
    assert lifecycle.cancel(Row(status="cancelled"), NOW, HOUR, "x") is None


def test_pause_then_resume_returns_to_running_with_the_budget_left() -> None:
    paused = lifecycle.pause(Row(), NOW, HOUR)
    assert paused is not None
    assert paused["status"] == "paused"
    row = Row(**{**Row().__dict__, **paused})
    resumed = lifecycle.resume(row, NOW + timedelta(hours=5), HOUR, waiting=False)
    assert resumed is not None
    assert resumed["status"] == "running"
    assert resumed["deadline_at"] == NOW + timedelta(hours=5, minutes=50)
    assert resumed["version"] == paused["version"] + 1


def test_resume_returns_a_paused_wait_to_waiting() -> None:
    resumed = lifecycle.resume(Row(status="paused"), NOW, HOUR, waiting=True)
    assert resumed is not None
    assert resumed["status"] == "waiting"


@pytest.mark.parametrize(
    ("operation", "status"),
    [
        (lambda row: lifecycle.pause(row, NOW, HOUR), "completed"),
        (lambda row: lifecycle.resume(row, NOW, HOUR, waiting=False), "failed"),
        (lambda row: lifecycle.cancel(row, NOW, HOUR, "x"), "completed"),
        (lambda row: lifecycle.retry(row, NOW, HOUR), "completed"),
        (lambda row: lifecycle.retry(row, NOW, HOUR), "waiting"),
    ],
)
def test_controls_that_do_not_apply_are_refused(operation, status: str) -> None:
    with pytest.raises(TransitionError):
        operation(Row(status=status))


def test_cancel_keeps_the_result_so_far() -> None:
    changes = lifecycle.cancel(Row(result="blocked"), NOW, HOUR, "not needed")
    assert changes is not None
    assert "result" not in changes
    assert (changes["status"], changes["error_type"], changes["error_message"]) == (
        "cancelled",
        ErrorType.CANCELLED.value,
        "not needed",
    )


def test_the_machine_cancel_decision_and_the_control_agree_on_the_status() -> None:
    assert cancel().status.value == lifecycle.cancel(Row(), NOW, HOUR, "x")["status"]  # type: ignore[index]


def test_retry_starts_a_new_attempt_group_with_a_fresh_budget() -> None:
    row = Row(status="failed", result="failed", deadline_at=None, running_seconds=3000.0)
    changes = lifecycle.retry(row, NOW, HOUR)
    assert changes is not None
    assert changes["attempt_group"] == 2
    assert changes["status"] == "running"
    assert changes["deadline_at"] == NOW + HOUR
    assert changes["running_seconds"] == 0.0
    assert lifecycle.retry(Row(status="running", attempt_group=2), NOW, HOUR) is None


def test_a_woken_execution_runs_and_a_paused_one_stays_paused() -> None:
    assert lifecycle.wake(Row(status="waiting", deadline_at=None), NOW, HOUR) == {
        "status": "running",
        "deadline_at": NOW + HOUR,
    }
    assert lifecycle.wake(Row(status="paused"), NOW, HOUR) == {}
