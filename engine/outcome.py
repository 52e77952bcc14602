"""What running a step produced: output, chosen branch, and requests to the shell.

A step never waits or creates an approval itself; it returns an
``ApprovalRequest`` or ``WaitRequest`` and the shell (or the dry run) records
it durably. Both serialise with ``to_dict``/``from_dict`` so the shell can keep
them on the waiting execution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.duration import format_duration, parse_duration
from engine.errors import StepError
from engine.state import ExecutionResult

DEFAULT_APPROVAL_EXPIRY = timedelta(hours=24)


@dataclass(frozen=True)
class ApprovalRequest:
    entity: str
    entity_id: str | None
    approver_role: str | None
    expires_in: timedelta = DEFAULT_APPROVAL_EXPIRY
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def expires_at(self, now: datetime) -> datetime:
        return now + self.expires_in

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "entity_id": self.entity_id,
            "approver_role": self.approver_role,
            "expires_in": format_duration(self.expires_in),
            "reason": self.reason,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        return cls(
            entity=data["entity"],
            entity_id=data.get("entity_id"),
            approver_role=data.get("approver_role"),
            expires_in=parse_duration(
                data.get("expires_in") or DEFAULT_APPROVAL_EXPIRY.total_seconds()
            ),
            reason=data.get("reason"),
            data=dict(data.get("data") or {}),
        )


@dataclass(frozen=True)
class WaitRequest:
    """Wait for an event (``event``, ``match`` with values already rendered,
    ``timeout``) or for a time (``duration`` from now, or ``until``)."""

    event: str | None = None
    match: Mapping[str, Any] | None = None
    timeout: timedelta | None = None
    duration: timedelta | None = None
    until: datetime | None = None

    @property
    def is_for_event(self) -> bool:
        return self.event is not None

    def due_at(self, now: datetime) -> datetime | None:
        """When the wait ends on its own: the timeout of an event wait, or the
        wake-up time of a time wait. None: wait for the event indefinitely."""
        if self.until is not None:
            return self.until
        if self.duration is not None:
            return now + self.duration
        if self.timeout is not None:
            return now + self.timeout
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "match": self.match,
            "timeout": None if self.timeout is None else format_duration(self.timeout),
            "duration": None if self.duration is None else format_duration(self.duration),
            "until": None if self.until is None else self.until.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WaitRequest:
        until = data.get("until")
        return cls(
            event=data.get("event"),
            match=data.get("match"),
            timeout=None if data.get("timeout") is None else parse_duration(data["timeout"]),
            duration=None if data.get("duration") is None else parse_duration(data["duration"]),
            until=None if until is None else parse_instant(until),
        )


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time; a naive one is taken as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StepOutcome:
    """The result of one successful step run.

    ``context_updates`` is to be deep-merged into the execution context by the
    caller; it already holds ``steps.<step_id>.output`` and any ``set`` values.
    ``input`` is the step's rendered configuration with secrets redacted, for
    the trace. ``condition_result`` is the verdict of a condition step.
    """

    output: Any = None
    next_step_id: str | None = None
    result: ExecutionResult | None = None
    context_updates: Mapping[str, Any] = field(default_factory=dict)
    approval: ApprovalRequest | None = None
    wait: WaitRequest | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    input: Any = None
    reason: str | None = None
    condition_result: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "next_step_id": self.next_step_id,
            "result": None if self.result is None else self.result.value,
            "context_updates": dict(self.context_updates),
            "approval": None if self.approval is None else self.approval.to_dict(),
            "wait": None if self.wait is None else self.wait.to_dict(),
            "decisions": list(self.decisions),
            "input": self.input,
            "reason": self.reason,
            "condition_result": self.condition_result,
        }


@dataclass(frozen=True)
class BranchOutcome:
    """How one parallel branch or foreach item ended.

    A branch passes when it completes without error; a condition branch passes
    only when its condition is true (SPEC §2 parallel).
    """

    passed: bool
    output: Any = None
    error: Mapping[str, Any] | None = None
    context_updates: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_outcome(cls, outcome: StepOutcome) -> BranchOutcome:
        passed = outcome.condition_result is not False
        return cls(passed, outcome.output, None, outcome.context_updates)

    @classmethod
    def from_error(cls, error: StepError) -> BranchOutcome:
        return cls(False, None, error.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "output": self.output, "error": self.error}


@dataclass(frozen=True)
class JoinDecision:
    """The verdict on a parallel or foreach step once every branch has ended."""

    passed: bool
    output: Any
    failed: tuple[str, ...] = ()
    message: str | None = None
    context_updates: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "output": self.output,
            "failed": list(self.failed),
            "message": self.message,
        }
