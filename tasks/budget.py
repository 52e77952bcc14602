"""The workflow timeout as a running-time budget (SPEC: time spent waiting does not count).

While an execution runs, `deadline_at` is when its budget runs out; when it
stops running (waiting, paused, finished) the time it used is banked in
`running_seconds` and `deadline_at` is cleared. The sweeper fails running
executions whose `deadline_at` passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.definition import Definition
from models.execution import Execution


def _timeout(execution: Execution, timeout: timedelta | None) -> timedelta:
    return timeout if timeout is not None else Definition.from_dict(execution.definition).timeout


def enter_running(execution: Execution, now: datetime, timeout: timedelta | None = None) -> None:
    if execution.deadline_at is not None:
        return
    budget = _timeout(execution, timeout) - timedelta(seconds=execution.running_seconds or 0.0)
    execution.deadline_at = now + max(budget, timedelta(0))


def leave_running(execution: Execution, now: datetime, timeout: timedelta | None = None) -> None:
    if execution.deadline_at is None:
        return
    total = _timeout(execution, timeout)
    remaining = execution.deadline_at - now
    execution.running_seconds = max((total - remaining).total_seconds(), 0.0)
    execution.deadline_at = None


def is_past_deadline(execution: Execution, now: datetime) -> bool:
    return execution.deadline_at is not None and execution.deadline_at <= now
