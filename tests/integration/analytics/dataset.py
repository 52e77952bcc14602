"""A known mix of executions, step runs, events and approvals, and the answers computed in Python.

Rows are inserted straight through the session factory with controlled
timestamps; `Expected` recomputes every analytics number from the same rows
without SQL, so the endpoints are checked against an independent computation.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

STATUSES = ("pending", "running", "waiting", "paused", "completed", "failed", "cancelled")
RESULTS = ("allowed", "blocked", "executed", "failed")
ERROR_TYPES = ("timeout", "step_error", "context_error", "cancelled")
WORKFLOWS = ("alpha", "beta", "gamma", "delta")
STEP_TYPES = {"check": "condition", "notify": "execute", "decide": "action"}
ERROR_MESSAGES = ("HTTP 500 from billing", "Step timed out after 30s", "order.total is missing")
# Offsets from now that stay clear of the window edges (1h, 24h, 7d, 30d) by minutes.
OFFSET_RANGES = (
    (timedelta(minutes=2), timedelta(minutes=55)),
    (timedelta(minutes=65), timedelta(hours=23)),
    (timedelta(hours=25), timedelta(days=6, hours=20)),
    (timedelta(days=7, hours=2), timedelta(days=29, hours=20)),
    (timedelta(days=30, hours=2), timedelta(days=45)),
)


@dataclass
class ExecutionRow:
    id: uuid.UUID
    workflow_id: str
    status: str
    result: str | None
    error_type: str | None
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None
    duration_ms: int | None


@dataclass
class StepRow:
    execution: ExecutionRow
    step_id: str
    step_type: str
    attempt: int
    status: str
    duration_ms: int | None
    created_at: datetime


@dataclass
class Dataset:
    organization_id: uuid.UUID
    executions: list[ExecutionRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    events: list[tuple[datetime, list[str]]] = field(default_factory=list)
    pending_approvals: list[str] = field(default_factory=list)


def seed(app: Any, organization_id: str, *, size: int = 160, seed_value: int = 7) -> Dataset:
    """Insert a reproducible mix for one organization; return what was inserted."""
    from models.execution import Approval, Event, Execution, StepRun
    from models.workflow import Workflow

    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    org = uuid.UUID(organization_id)
    data = Dataset(org)
    with app.extensions["iw"].session_factory() as session:
        rows = {}
        for slug in WORKFLOWS:
            row = Workflow(
                organization_id=org,
                workflow_id=slug,
                version="1",
                name=slug.title(),
                definition={"trigger": {"type": "manual"}, "steps": []},
                trigger_type="manual",
                enabled=True,
            )
            session.add(row)
            rows[slug] = row
        session.flush()
        for index in range(size):
            execution = _execution(rng, now, index)
            data.executions.append(execution)
            session.add(
                Execution(
                    id=execution.id,
                    organization_id=org,
                    workflow_row_id=rows[execution.workflow_id].id,
                    workflow_id=execution.workflow_id,
                    workflow_version="1",
                    definition={},
                    status=execution.status,
                    result=execution.result,
                    error_type=execution.error_type,
                    error_message=execution.error_message,
                    trigger_type="manual",
                    trigger_payload={},
                    context={},
                    started_at=execution.created_at,
                    completed_at=execution.completed_at,
                    duration_ms=execution.duration_ms,
                    created_at=execution.created_at,
                )
            )
        session.flush()
        for execution in data.executions:
            for step in _steps(rng, execution):
                data.steps.append(step)
                session.add(
                    StepRun(
                        organization_id=org,
                        execution_id=execution.id,
                        step_id=step.step_id,
                        step_type=step.step_type,
                        attempt=step.attempt,
                        status=step.status,
                        duration_ms=step.duration_ms,
                        created_at=step.created_at,
                    )
                )
            if execution.status == "waiting" and rng.random() < 0.7:
                data.pending_approvals.append(execution.workflow_id)
                session.add(
                    Approval(
                        organization_id=org,
                        execution_id=execution.id,
                        workflow_id=execution.workflow_id,
                        step_id="decide",
                        approver_role="finance",
                        status="pending",
                    )
                )
        for _ in range(25):
            received = now - _offset(rng)
            triggered = rng.sample(WORKFLOWS, rng.randint(0, 2))
            data.events.append((received, triggered))
            session.add(
                Event(
                    organization_id=org,
                    event_type="order.created",
                    payload={},
                    triggered_workflows=triggered,
                    received_at=received,
                )
            )
        # Decided approvals do not count as pending.
        decided = next(e for e in data.executions if e.status == "completed")
        session.add(
            Approval(
                organization_id=org,
                execution_id=decided.id,
                workflow_id=decided.workflow_id,
                step_id="decide",
                approver_role="finance",
                status="approved",
            )
        )
        session.commit()
    return data


def _offset(rng: random.Random) -> timedelta:
    low, high = rng.choice(OFFSET_RANGES)
    return low + (high - low) * rng.random()


def _execution(rng: random.Random, now: datetime, index: int) -> ExecutionRow:
    status = rng.choices(STATUSES, weights=(1, 1, 1, 1, 6, 3, 1))[0]
    created_at = now - _offset(rng)
    result = error_type = error_message = None
    completed_at = None
    duration_ms = None
    if status == "completed":
        result = rng.choice(("allowed", "blocked", "executed"))
        if result == "blocked" and rng.random() < 0.3:
            error_type = "timeout"  # an expired approval completes blocked, with a timeout
    elif status == "failed":
        result = "failed"
        error_type = rng.choice(("timeout", "step_error", "step_error", "context_error"))
        error_message = rng.choice(ERROR_MESSAGES)
    elif status == "cancelled":
        error_type = "cancelled"
        error_message = "Cancelled by a user"
    if status in ("completed", "failed", "cancelled"):
        duration_ms = rng.randint(5, 90_000)
        # A few finished rows have no completed_at (recorded by an older writer).
        if rng.random() < 0.9:
            completed_at = created_at + timedelta(milliseconds=duration_ms)
    elif status == "running" and index % 2:
        duration_ms = None
    return ExecutionRow(
        id=uuid.uuid4(),
        workflow_id=rng.choices(WORKFLOWS, weights=(5, 3, 2, 1))[0],
        status=status,
        result=result,
        error_type=error_type,
        error_message=error_message,
        created_at=created_at,
        completed_at=completed_at,
        duration_ms=duration_ms,
    )


def _steps(rng: random.Random, execution: ExecutionRow) -> list[StepRow]:
    rows = []
    for position, (step_id, step_type) in enumerate(STEP_TYPES.items()):
        if rng.random() < 0.25:
            continue
        attempts = rng.choices((1, 2, 3), weights=(6, 2, 1))[0]
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            status = (
                rng.choice(("completed", "completed", "failed", "skipped")) if last else "failed"
            )
            rows.append(
                StepRow(
                    execution=execution,
                    step_id=step_id,
                    step_type=step_type,
                    attempt=attempt,
                    status=status,
                    duration_ms=None if status == "skipped" else rng.randint(1, 5_000),
                    created_at=execution.created_at + timedelta(seconds=position * 3 + attempt),
                )
            )
    return rows


# ---------------------------------------------------------------------------
# The same numbers, computed in Python over the inserted rows.


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """Postgres' percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def rate(completed: int, failed: int) -> float | None:
    return completed / (completed + failed) if completed + failed else None


@dataclass
class Expected:
    data: Dataset
    start: datetime
    end: datetime
    workflow_id: str | None = None

    @classmethod
    def for_response(cls, data: Dataset, body: dict[str, Any]) -> Expected:
        return cls(
            data,
            datetime.fromisoformat(body["start"]),
            datetime.fromisoformat(body["end"]),
            body.get("workflow_id"),
        )

    def _matches(self, workflow_id: str) -> bool:
        return self.workflow_id is None or workflow_id == self.workflow_id

    @property
    def executions(self) -> list[ExecutionRow]:
        return [
            e
            for e in self.data.executions
            if self.start <= e.created_at <= self.end and self._matches(e.workflow_id)
        ]

    @property
    def step_rows(self) -> list[StepRow]:
        return [
            s
            for s in self.data.steps
            if self.start <= s.created_at <= self.end and self._matches(s.execution.workflow_id)
        ]

    def by_status(self) -> dict[str, int]:
        counts = Counter(e.status for e in self.executions)
        return {status: counts.get(status, 0) for status in STATUSES}

    def by_result(self) -> dict[str, int]:
        counts = Counter(e.result for e in self.executions if e.result)
        return {result: counts.get(result, 0) for result in RESULTS}

    def error_types(self) -> dict[str, int]:
        counts = Counter(e.error_type for e in self.executions if e.error_type)
        return {error_type: counts.get(error_type, 0) for error_type in ERROR_TYPES}

    def durations(self) -> list[float]:
        return [float(e.duration_ms) for e in self.executions if e.duration_ms is not None]

    def success_rate(self) -> float | None:
        statuses = self.by_status()
        return rate(statuses["completed"], statuses["failed"])

    def live(self) -> dict[str, int]:
        every = [e for e in self.data.executions if self._matches(e.workflow_id)]
        return {
            "active": sum(e.status in ("pending", "running") for e in every),
            "waiting": sum(e.status == "waiting" for e in every),
            "pending_approvals": sum(self._matches(w) for w in self.data.pending_approvals),
        }

    def events_received(self) -> int:
        return sum(
            self.start <= received <= self.end
            and (self.workflow_id is None or self.workflow_id in triggered)
            for received, triggered in self.data.events
        )

    def workflows(self) -> list[dict[str, Any]]:
        groups: dict[str, list[ExecutionRow]] = defaultdict(list)
        for execution in self.executions:
            groups[execution.workflow_id].append(execution)
        rows = []
        for slug, members in groups.items():
            statuses = Counter(e.status for e in members)
            rows.append(
                {
                    "workflow_id": slug,
                    "total": len(members),
                    "completed": statuses["completed"],
                    "failed": statuses["failed"],
                    "cancelled": statuses["cancelled"],
                    "success_rate": rate(statuses["completed"], statuses["failed"]),
                    "avg_duration_ms": mean(
                        [e.duration_ms for e in members if e.duration_ms is not None]
                    ),
                    "last_run_at": max(e.created_at for e in members),
                }
            )
        return sorted(rows, key=lambda row: (-row["total"], row["workflow_id"]))

    def trend(self, unit: str) -> dict[datetime, dict[str, Any]]:
        buckets: dict[datetime, list[ExecutionRow]] = defaultdict(list)
        for execution in self.executions:
            buckets[truncate(execution.created_at, unit)].append(execution)
        result = {}
        for bucket, members in buckets.items():
            statuses = Counter(e.status for e in members)
            result[bucket] = {
                "total": len(members),
                "completed": statuses["completed"],
                "failed": statuses["failed"],
                "cancelled": statuses["cancelled"],
                "in_progress": sum(
                    statuses[s] for s in ("pending", "running", "waiting", "paused")
                ),
                "avg_duration_ms": mean(
                    [e.duration_ms for e in members if e.duration_ms is not None]
                ),
            }
        return result

    def failures(self) -> list[ExecutionRow]:
        return [e for e in self.executions if e.status == "failed"]

    def error_groups(self) -> list[dict[str, Any]]:
        groups: dict[tuple[str | None, str | None], list[ExecutionRow]] = defaultdict(list)
        for execution in self.failures():
            groups[(execution.error_type, execution.error_message)].append(execution)
        return [
            {
                "error_type": error_type,
                "error_message": message,
                "count": len(members),
                "last_seen": max(failed_at(e) for e in members),
                "workflow_ids": sorted({e.workflow_id for e in members}),
            }
            for (error_type, message), members in groups.items()
        ]

    def steps(self) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str, str], list[StepRow]] = defaultdict(list)
        for step in self.step_rows:
            groups[(step.execution.workflow_id, step.step_id, step.step_type)].append(step)
        rows = []
        for (workflow_id, step_id, step_type), members in groups.items():
            durations = [float(s.duration_ms) for s in members if s.duration_ms is not None]
            rows.append(
                {
                    "workflow_id": workflow_id,
                    "step_id": step_id,
                    "step_type": step_type,
                    "runs": len(members),
                    "completed": sum(s.status == "completed" for s in members),
                    "failures": sum(s.status == "failed" for s in members),
                    "skipped": sum(s.status == "skipped" for s in members),
                    "retries": sum(s.attempt > 1 for s in members),
                    "avg_duration_ms": mean(durations),
                    "p95_duration_ms": percentile_cont(durations, 0.95),
                }
            )
        return sorted(
            rows,
            key=lambda row: (-row["runs"], row["workflow_id"], row["step_id"], row["step_type"]),
        )


def failed_at(execution: ExecutionRow) -> datetime:
    return execution.completed_at or execution.created_at


def truncate(moment: datetime, unit: str) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == "minute":
        return moment.replace(second=0, microsecond=0)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_series(start: datetime, end: datetime, unit: str) -> list[datetime]:
    step = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
    buckets, current = [], truncate(start, unit)
    while current <= truncate(end, unit):
        buckets.append(current)
        current += step[unit]
    return buckets
