"""One step attempt: its context, its ports, and running it through the engine.

Nothing here commits except the effects ledger (through the ports, in the
effects path only); recording the result is tasks.transition's job, into a
tasks.recording.Recording (the attempt's step run among it).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from redis import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine.context import deep_merge, with_now
from engine.definition import Definition, Step
from engine.enrichment import ENRICHMENT_KEY
from engine.errors import EngineError, StepError
from engine.executor import run_step
from engine.machine import idempotency_key
from engine.state import StepRunStatus
from models.config import Settings
from models.execution import Execution, StepRun
from models.workflow import Rule
from tasks import runtime
from tasks.enrichment import load_resources
from tasks.ledger import EffectsLedger, LedgerScope
from tasks.locking import LockedExecution, RunState
from tasks.notifier import Notifier
from tasks.ports import WorkerPorts
from tasks.recording import Recording, new_id
from tasks.records import RecordBuffer

log = structlog.get_logger(__name__)

# Runs a step's work with the attempt's ports and rule lookup (a foreach item's body).
Body = Callable[[WorkerPorts, Any], Any]

RUNNING = StepRunStatus.RUNNING.value
_APPROVAL_NAMESPACE = uuid.UUID("0b7e3c55-2a3f-4d61-8d1e-3c8a7f1e2b90")


def approval_id_for(execution_id: uuid.UUID, step_id: str, attempt_group: int) -> uuid.UUID:
    """Allocated before the step runs (so `approval_url` can be rendered) and the same for
    every re-run of the attempt group, so a redelivered step finds its own approval."""
    return uuid.uuid5(_APPROVAL_NAMESPACE, f"{execution_id}:{step_id}:{attempt_group}")


# What a step runs on: the plain row the step task read (tasks.locking), or the ORM
# row a wake-up holds (tasks.transition.wake: the step is not run, only decided on).
E = TypeVar("E", Execution, LockedExecution)


def needs_enrichment(definition: Definition, execution: Execution | LockedExecution) -> bool:
    return bool(definition.context_load) and ENRICHMENT_KEY not in (execution.context or {})


@dataclass
class StepAttempt(Generic[E]):
    execution: E
    definition: Definition
    step: Step
    branch_key: str
    attempt: int
    run: RunState | None
    started_at: datetime
    context: dict[str, Any]
    approval_id: uuid.UUID | None = None
    records: RecordBuffer | None = None
    log_lines: list[str] = field(default_factory=list)
    extra_updates: dict[str, Any] = field(default_factory=dict)
    effects_replayed: int = 0
    duration_ms: int = 0  # once the run is finished

    @classmethod
    def begin(
        cls,
        execution: E,
        definition: Definition,
        step: Step,
        *,
        branch_key: str,
        attempt: int,
        run: RunState | None,
        now: datetime,
        settings: Settings,
    ) -> StepAttempt[E]:
        context = with_now(execution.context or {}, now)
        approval_id = None
        if step.creates_approval and not branch_key:
            approval_id = approval_id_for(execution.id, step.id, execution.attempt_group)
            context["approval_url"] = f"{settings.public_url.rstrip('/')}/approvals/{approval_id}"
        return cls(execution, definition, step, branch_key, attempt, run, now, context, approval_id)

    @property
    def idempotency_key(self) -> str:
        step_part = self.step.id if not self.branch_key else f"{self.branch_key}/{self.step.id}"
        return idempotency_key(str(self.execution.id), step_part, self.execution.attempt_group)

    @property
    def workflow_slug(self) -> str:
        return self.execution.workflow_id

    def mark_running(self, rec: Recording, now: datetime) -> None:
        """Record the attempt's step-run row as running (added, or a pending retry, or a
        dead process's attempt taken over)."""
        run = self.run
        if run is None:
            run_id = new_id()
            rec.add(StepRun, {**self._run_key(run_id), "status": RUNNING, "started_at": now})
            run = RunState(run_id, RUNNING, now, None)
        elif run.status == StepRunStatus.PENDING:
            rec.set(StepRun, run.id, {"status": RUNNING, "started_at": now})
            run = RunState(run.id, RUNNING, now, run.due_at)
        else:
            log.warning(
                "step_attempt_taken_over", execution_id=str(self.execution.id), step_id=self.step.id
            )
        self.run = run
        self.started_at = run.started_at or now

    def finish_run(
        self, rec: Recording, status: StepRunStatus, now: datetime, **values: Any
    ) -> None:
        """Record the attempt's step-run row as ended, with `values` (its input, output...)."""
        run = self.run
        started = run.started_at if run is not None and run.started_at else self.started_at
        self.duration_ms = int(max((now - started).total_seconds(), 0) * 1000)
        ended = {
            "status": status.value,
            "completed_at": now,
            "duration_ms": self.duration_ms,
            **values,
        }
        if run is None:
            run_id = new_id()
            rec.add(StepRun, {**self._run_key(run_id), "started_at": started, **ended})
            self.run = RunState(run_id, status.value, started, None)
        else:
            rec.set(StepRun, run.id, ended)

    def _run_key(self, run_id: uuid.UUID) -> dict[str, Any]:
        return {
            "id": run_id,
            "step_id": self.step.id,
            "step_type": self.step.type,
            "branch_key": self.branch_key,
            "attempt_group": self.execution.attempt_group,
            "attempt": self.attempt,
        }


def run_attempt(
    rt: runtime.Runtime,
    session: Session,
    attempt: StepAttempt,
    *,
    deadline: float | None,
    allow_effects: bool,
    body: Body | None = None,
) -> Any:
    """Run the step through the engine (or `body`, e.g. a foreach item); every failure
    comes back as a StepError."""
    ports = _ports(rt, session, attempt, deadline, allow_effects)
    attempt.records = ports.records
    rules = _rule_lookup(session, attempt.execution.organization_id)
    try:
        prepare_context(rt, attempt, allow_effects=allow_effects)
        if body is not None:
            return body(ports, rules)
        outcome = run_step(
            attempt.step,
            attempt.context,
            ports,
            rt.renderer,
            rules=rules,
            idempotency_key=attempt.idempotency_key,
        )
    except StepError as exc:
        return exc
    except SoftTimeLimitExceeded:
        return StepError("timeout", f"step {attempt.step.id!r} exceeded its time limit")
    except EngineError as exc:
        return StepError("validation", str(exc), retryable=False)
    except (SQLAlchemyError, RedisError):
        # Infrastructure, not the step: the task fails, its ticket stays, and the
        # relay runs the attempt again once the database or Redis is back.
        raise
    except Exception as exc:  # a bug must fail the step readably, not loop forever
        log.exception(
            "step_crashed", execution_id=str(attempt.execution.id), step_id=attempt.step.id
        )
        return StepError("internal", f"{type(exc).__name__}: {exc}", retryable=False)
    finally:
        attempt.log_lines = ports.log_lines
        attempt.effects_replayed = ports.effects_replayed
    return outcome


def prepare_context(rt: runtime.Runtime, attempt: StepAttempt, *, allow_effects: bool) -> None:
    """`context.load` before the execution's first step (on the atomic path, where
    nothing may call out, the report says the service was not asked)."""
    if not needs_enrichment(attempt.definition, attempt.execution):
        return
    settings = rt.settings
    updates = load_resources(
        attempt.context,
        attempt.definition.context_load,
        base_url=settings.enrichment_base_url if allow_effects else "",
        organization_id=str(attempt.execution.organization_id),
        http=rt.outbound if allow_effects else None,
        cache=rt.redis if allow_effects else None,
        cache_seconds=settings.enrichment_cache_seconds,
        timeout=settings.outbound_timeout_seconds,
    )
    attempt.context = deep_merge(attempt.context, updates)
    attempt.extra_updates = deep_merge(attempt.extra_updates, updates)


def _ports(
    rt: runtime.Runtime,
    session: Session,
    attempt: StepAttempt,
    deadline: float | None,
    allow_effects: bool,
) -> WorkerPorts:
    execution = attempt.execution
    ledger = EffectsLedger(
        session, LedgerScope(execution.organization_id, execution.id, attempt.step.id)
    )
    notifier = Notifier(
        session,
        rt.settings,
        rt.outbound,
        ledger,
        organization_id=execution.organization_id,
        execution_id=execution.id,
        step_id=attempt.step.id,
    )
    return WorkerPorts(
        http=rt.outbound,
        ledger=ledger,
        notifier=notifier,
        records=RecordBuffer(
            session, execution.organization_id, execution.id, attempt.idempotency_key
        ),
        deadline=deadline,
        allow_effects=allow_effects,
        log_fields={
            "execution_id": str(execution.id),
            "organization_id": str(execution.organization_id),
            "workflow_id": execution.workflow_id,
            "step_id": attempt.step.id,
        },
    )


def _rule_lookup(session: Session, organization_id: uuid.UUID) -> Any:
    def lookup(rule_id: str) -> Sequence[Mapping[str, Any]] | None:
        conditions = session.scalar(
            select(Rule.conditions).where(
                Rule.organization_id == organization_id,
                Rule.rule_id == rule_id,
                Rule.enabled.is_(True),
            )
        )
        return None if conditions is None else list(conditions)

    return lookup


def retry_rng() -> float:
    return random.random()  # noqa: S311 - jitter, not cryptography
