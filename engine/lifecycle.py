"""The execution lifecycle: how an execution's status, time budget and version change.

Every change of an execution's lifecycle columns is decided here, whoever makes
it: a step's transition, a wait or an approval that wakes it, the operator's
pause/resume/cancel/retry, the timeout sweep, a forced workflow delete. Each
function takes the execution as it is now (the ORM row or the plain row a step
reads: anything with the attributes of ``ExecutionFields``) and returns the
columns to write (``Changes``), the bumped compare-and-set ``version`` among
them. The shell writes what it gets and never sets these columns itself. A
status change the transition table (``engine.state.EXECUTION_TRANSITIONS``)
does not allow raises ``TransitionError``.

The workflow timeout is a running-time budget (SPEC §2: time spent waiting
does not count). While an execution runs, ``deadline_at`` is when its budget
runs out; when it stops running (waiting, paused, finished) the time it used
is banked in ``running_seconds`` and ``deadline_at`` is cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.errors import EngineError
from engine.machine import AwaitApproval, Continue, Finish, Wait
from engine.state import (
    FINISHED_STATES,
    ErrorType,
    ExecutionResult,
    ExecutionStatus,
    can_transition,
)

S = ExecutionStatus
# Column name -> value, for the shell to write (and to merge with the step's other changes).
Changes = dict[str, Any]
PAUSABLE = frozenset({S.PENDING, S.RUNNING, S.WAITING})
RUNNABLE = frozenset({S.PENDING, S.RUNNING})


class ExecutionFields(Protocol):
    """What the lifecycle reads of an execution."""

    @property
    def status(self) -> str: ...
    @property
    def result(self) -> str | None: ...
    @property
    def current_step_id(self) -> str | None: ...
    @property
    def attempt_group(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def running_seconds(self) -> float: ...
    @property
    def deadline_at(self) -> datetime | None: ...


class TransitionError(EngineError):
    """The change does not apply to the execution's current status (HTTP 409)."""


@dataclass(frozen=True)
class _After:
    """An execution's fields with changes applied, so changes compose."""

    base: ExecutionFields
    changes: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields
        return self.changes[name] if name in self.changes else getattr(self.base, name)


def after(execution: ExecutionFields, changes: Mapping[str, Any]) -> ExecutionFields:
    """The execution as it is once `changes` are written."""
    return _After(execution, changes) if changes else execution


# --- the running-time budget ------------------------------------------------------------
def enter_running(execution: ExecutionFields, now: datetime, timeout: timedelta) -> Changes:
    if execution.deadline_at is not None:
        return {}
    budget = timeout - timedelta(seconds=execution.running_seconds or 0.0)
    return {"deadline_at": now + max(budget, timedelta(0))}


def leave_running(execution: ExecutionFields, now: datetime, timeout: timedelta) -> Changes:
    if execution.deadline_at is None:
        return {}
    remaining = execution.deadline_at - now
    return {"running_seconds": max((timeout - remaining).total_seconds(), 0.0), "deadline_at": None}


def is_past_deadline(execution: ExecutionFields, now: datetime) -> bool:
    return execution.deadline_at is not None and execution.deadline_at <= now


# --- a step's transition ------------------------------------------------------------------
def start_step(execution: ExecutionFields, now: datetime, timeout: timedelta) -> Changes:
    """A step begins: a pending execution starts running, its budget counting."""
    changes = _status(execution, S.RUNNING) if execution.status == S.PENDING else {}
    return {**changes, **enter_running(after(execution, changes), now, timeout)}


def continue_to(
    execution: ExecutionFields, decision: Continue, now: datetime, timeout: timedelta
) -> Changes:
    """The flow moves on to `decision.step_id` (a paused execution stays paused: the
    step that was in flight records where it got to, and resume dispatches it)."""
    changes = _moved_to(decision.step_id, decision.result, now)
    if execution.status != S.PAUSED:
        changes.update(_status(execution, S.RUNNING))
        changes.update(enter_running(execution, now, timeout))
    return _bump(execution, changes)


def park(
    execution: ExecutionFields,
    decision: Wait | AwaitApproval,
    now: datetime,
    timeout: timedelta,
) -> Changes:
    """The flow waits for an event, a time or an approval (paused stays paused)."""
    changes = {
        **_moved_to(decision.step_id, decision.result, now),
        **leave_running(execution, now, timeout),
    }
    if execution.status != S.PAUSED:
        changes.update(_status(execution, S.WAITING))
    return _bump(execution, changes)


def finish(
    execution: ExecutionFields, decision: Finish, now: datetime, timeout: timedelta
) -> Changes:
    """The execution ends as the decision says (once: an ended execution stays ended)."""
    if execution.status in FINISHED_STATES:
        raise TransitionError(f"the execution already ended ({execution.status})")
    changes: Changes = {
        **leave_running(execution, now, timeout),
        **_status(execution, decision.status),
        "result": _value(decision.result),
        "error_type": _value(decision.error_type),
        "error_message": decision.message if decision.status != S.COMPLETED else None,
        "heartbeat_at": now,
        **_ended(execution, now),
    }
    return _bump(execution, changes)


def retry_later(execution: ExecutionFields, due: datetime, now: datetime) -> Changes:
    """A retry is scheduled: the sweeper must not take the backoff for a stuck step."""
    return _bump(execution, {"heartbeat_at": max(due, now)})


def touch(execution: ExecutionFields, now: datetime) -> Changes:
    """Progress that changes no status (a fan-out started, a branch or item ended)."""
    return _bump(execution, {"heartbeat_at": now})


def wake(execution: ExecutionFields, now: datetime, timeout: timedelta) -> Changes:
    """A waiting execution's event, time or approval decision came: it runs again
    (a paused one stays paused until resumed)."""
    if execution.status != S.WAITING:
        return {}
    changes = _status(execution, S.RUNNING)
    return {**changes, **enter_running(after(execution, changes), now, timeout)}


# --- the operator's controls --------------------------------------------------------------
def pause(execution: ExecutionFields, now: datetime, timeout: timedelta) -> Changes | None:
    """None when already paused (pause is idempotent)."""
    if execution.status == S.PAUSED:
        return None
    if execution.status not in PAUSABLE:
        raise TransitionError(f"cannot pause a {execution.status} execution")
    changes = {**leave_running(execution, now, timeout), **_status(execution, S.PAUSED)}
    return _bump(execution, changes)


def resume(
    execution: ExecutionFields, now: datetime, timeout: timedelta, *, waiting: bool
) -> Changes | None:
    """Back to what the execution did before the pause: waiting (for an approval or
    an event) or running. None when it is not paused (resume is idempotent)."""
    if execution.status in PAUSABLE:
        return None
    if execution.status != S.PAUSED:
        raise TransitionError(f"cannot resume a {execution.status} execution")
    if waiting or execution.current_step_id is None:
        return _bump(execution, _status(execution, S.WAITING))
    changes = {
        **_status(execution, S.RUNNING),
        **enter_running(execution, now, timeout),
        "heartbeat_at": now,
    }
    return _bump(execution, changes)


def cancel(
    execution: ExecutionFields, now: datetime, timeout: timedelta, reason: str
) -> Changes | None:
    """None when already cancelled (cancel is idempotent). The result so far stays."""
    if execution.status == S.CANCELLED:
        return None
    if execution.status in FINISHED_STATES:
        raise TransitionError(f"cannot cancel a {execution.status} execution")
    changes: Changes = {
        **leave_running(execution, now, timeout),
        **_status(execution, S.CANCELLED),
        "error_type": ErrorType.CANCELLED.value,
        "error_message": reason,
        **_ended(execution, now),
    }
    return _bump(execution, changes)


def retry(execution: ExecutionFields, now: datetime, timeout: timedelta) -> Changes | None:
    """Re-run a failed execution from its failed step, as a new attempt group (new
    idempotency keys) with a fresh budget. None when already retried."""
    if execution.status in RUNNABLE and execution.attempt_group > 1:
        return None
    if execution.status != S.FAILED:
        raise TransitionError(
            f"only a failed execution can be retried (this one is {execution.status})"
        )
    if execution.current_step_id is None:
        raise TransitionError("the execution has no step to retry from")
    changes: Changes = {
        **_status(execution, S.RUNNING),
        "attempt_group": execution.attempt_group + 1,
        "result": None,
        "error_type": None,
        "error_message": None,
        "completed_at": None,
        "duration_ms": None,
        "running_seconds": 0.0,
        "deadline_at": now + timeout,
        "heartbeat_at": now,
    }
    return _bump(execution, changes)


# --- helpers ------------------------------------------------------------------------------
def _status(execution: ExecutionFields, target: ExecutionStatus) -> Changes:
    current = S(execution.status)
    if current == target:
        return {}
    if not can_transition(current, target):
        raise TransitionError(f"an execution cannot go from {current} to {target}")
    return {"status": target.value}


def _moved_to(step_id: str, result: ExecutionResult | None, now: datetime) -> Changes:
    return {"current_step_id": step_id, "result": _value(result), "heartbeat_at": now}


def _ended(execution: ExecutionFields, now: datetime) -> Changes:
    started = execution.started_at or now
    return {
        "completed_at": now,
        "duration_ms": int((now - started).total_seconds() * 1000),
        "deadline_at": None,
    }


def _bump(execution: ExecutionFields, changes: Changes) -> Changes:
    return {**changes, "version": execution.version + 1}


def _value(member: ExecutionResult | ErrorType | None) -> str | None:
    return None if member is None else member.value
