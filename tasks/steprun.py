"""Running one step attempt: claim it, run it through the engine, record the result and
the next state in one transaction, then dispatch.

Two ways to run a step, chosen by its ticket's mode (engine.definition.RunMode,
decided once from the definition when the ticket is written):

* atomic: a step that touches nothing outside Postgres (conditions, `set`,
  `log`, record writes, approvals, waits, parallel fan-out) runs inside the
  transaction that consumes its ticket and records its result: one commit per
  step. A duplicate delivery blocks on the execution row lock, then finds its
  ticket gone and does nothing. A PLAIN step (it can only set the context) is
  first tried on an unlocked read of its row (or the row its message carries),
  outside any transaction: its transition is then one statement that applies
  only if the row is unchanged since the read, so read and write are its only
  round trips. If the row changed meanwhile (a duplicate delivery, a pause, a
  cancel) it runs again under the lock: harmless, as it has no effects.
* effects: a step that calls out (HTTP, notifications, enrichment) first claims
  the attempt (a committed `running` step-run row) under a Postgres session
  advisory lock, performs its effects through the effects ledger, then records
  the result and consumes the ticket in a final transaction. The lock lives on
  this process's database connection: if the process dies, Postgres drops it
  at once, so the redelivered message (task_reject_on_worker_lost) or the relay
  takes the attempt over, while a duplicate of a live attempt finds the lock
  taken and leaves the ticket to its owner.

Both end in the same writing of the transition: engine.lifecycle decides the
execution's next state; a plain step's transition is one statement of
models.writer, any other goes through tasks.transition in the same transaction.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, and_, bindparam, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import lifecycle
from engine.definition import Definition, RunMode, Step
from engine.errors import StepError
from engine.outcome import BranchOutcome, StepOutcome
from engine.state import ExecutionStatus, StepRunStatus
from models.db import UnitOfWork
from models.execution import DispatchOutbox, Execution, StepRun
from monitoring import metrics
from tasks import runtime
from tasks.applied import Applied, record_metrics
from tasks.dispatch import HARD_LIMIT_GRACE_SECONDS, Ticket, is_immediate
from tasks.fastpath import StaleRead, try_fast_write
from tasks.foreach import ItemResult, apply_item, is_item, item_index, run_item, start_foreach
from tasks.locking import AttemptState, LockedExecution, from_snapshot, lock_execution
from tasks.stepping import StepAttempt, prepare_context, run_attempt
from tasks.transition import (
    apply_failure,
    apply_outcome,
    fail_execution,
    fan_out,
    parent_step_id,
    write_changes,
)

log = structlog.get_logger(__name__)

RUNNABLE = frozenset({ExecutionStatus.PENDING, ExecutionStatus.RUNNING})
FINISHED_RUNS = frozenset({StepRunStatus.COMPLETED, StepRunStatus.FAILED, StepRunStatus.SKIPPED})
NEEDS_EFFECTS = "needs_effects"


@dataclass(frozen=True)
class StepMessage:
    outbox_id: int
    execution_id: uuid.UUID
    step_id: str
    branch_key: str
    attempt_group: int
    attempt: int
    limit_seconds: float
    sent_at: float | None = None
    mode: RunMode | None = None  # None: a ticket stored before tickets carried it
    snapshot: dict[str, Any] | None = None

    @classmethod
    def parse(cls, kwargs: dict[str, Any]) -> StepMessage:
        return cls(
            outbox_id=int(kwargs["outbox_id"]),
            execution_id=uuid.UUID(str(kwargs["execution_id"])),
            step_id=str(kwargs["step_id"]),
            branch_key=str(kwargs.get("branch_key") or ""),
            attempt_group=int(kwargs.get("attempt_group", 1)),
            attempt=int(kwargs.get("attempt", 1)),
            limit_seconds=float(kwargs.get("limit_seconds", 300)),
            sent_at=kwargs.get("sent_at"),
            mode=_mode(kwargs.get("mode")),
            snapshot=kwargs.get("snapshot"),
        )

    @property
    def attempt_key(self) -> dict[str, Any]:
        """The execution and step-run row this message names (tasks.locking.lock_execution)."""
        return {
            "execution_id": self.execution_id,
            "step_id": self.step_id,
            "branch_key": self.branch_key,
            "attempt_group": self.attempt_group,
            "attempt": self.attempt,
        }

    @property
    def lock_key(self) -> str:
        parts = (self.execution_id, self.step_id, self.branch_key, self.attempt_group, self.attempt)
        return ":".join(str(part) for part in parts)


def _mode(value: Any) -> RunMode | None:
    """The ticket's mode; None for a ticket without one (or one this version does not
    know), which the atomic path then asks the definition for."""
    try:
        return RunMode(value) if value else None
    except ValueError:
        return None


def run_step_message(rt: runtime.Runtime, message: StepMessage) -> str:
    """Run the attempt a ticket names; returns what happened (for logs and tests)."""
    if message.sent_at:
        metrics.record_dispatch_latency(time.time() - float(message.sent_at))
    if message.mode is RunMode.EFFECTS:
        return _run_with_effects(rt, message)
    outcome = _run_optimistic(rt, message) if message.mode is RunMode.PLAIN else None
    if outcome is None:
        outcome = _run_atomic(rt, message)
    if outcome == NEEDS_EFFECTS:  # a dead process's effects attempt, or an old ticket
        outcome = _run_with_effects(rt, message)
    return outcome


# --- checks shared by both paths --------------------------------------------------------
def _lock_execution(session: Session, execution_id: uuid.UUID) -> Execution | None:
    return session.scalars(
        select(Execution).where(Execution.id == execution_id).with_for_update()
    ).first()


def _why_not_runnable(execution: Execution | LockedExecution, message: StepMessage) -> str | None:
    if execution.status not in RUNNABLE:
        return f"execution_{execution.status}"
    if execution.attempt_group != message.attempt_group:
        return "stale_attempt_group"
    expected = parent_step_id(message.branch_key) if message.branch_key else message.step_id
    if execution.current_step_id != expected:
        return "stale_step"
    return None


def _attempt_row(session: Session, message: StepMessage) -> StepRun | None:
    return session.scalars(select(StepRun).where(_is_attempt(message))).first()


def _is_attempt(message: StepMessage) -> Any:
    return and_(
        StepRun.execution_id == message.execution_id,
        StepRun.step_id == message.step_id,
        StepRun.branch_key == message.branch_key,
        StepRun.attempt_group == message.attempt_group,
        StepRun.attempt == message.attempt,
    )


# Built once (SQLAlchemy caches its compiled SQL); each message only binds its values.
_LOCK_WITH_ATTEMPT = (
    select(Execution, StepRun)
    .outerjoin(
        StepRun,
        and_(
            StepRun.execution_id == Execution.id,
            StepRun.step_id == bindparam("step_id"),
            StepRun.branch_key == bindparam("branch_key"),
            StepRun.attempt_group == bindparam("attempt_group"),
            StepRun.attempt == bindparam("attempt"),
        ),
    )
    .where(Execution.id == bindparam("execution_id"))
    .with_for_update(of=Execution)
)


def _lock_with_attempt(
    session: Session, message: StepMessage
) -> tuple[Execution | None, StepRun | None]:
    """The execution, locked, and this attempt's step-run row if any: one round trip."""
    row = session.execute(_LOCK_WITH_ATTEMPT, message.attempt_key).first()
    return (None, None) if row is None else (row[0], row[1])


def _consume_ticket(session: Session, outbox_id: int) -> bool:
    deleted = session.execute(
        delete(DispatchOutbox).where(DispatchOutbox.id == outbox_id).returning(DispatchOutbox.id)
    ).first()
    return deleted is not None


def _is_early(run: StepRun | AttemptState | None, now: datetime) -> bool:
    """A retry attempt delivered before its backoff elapsed (an early duplicate)."""
    return (
        run is not None
        and run.status == StepRunStatus.PENDING
        and run.due_at is not None
        and run.due_at > now + timedelta(seconds=1)
    )


def _start_running(
    session: Session, execution: Execution, definition: Definition, now: datetime
) -> None:
    write_changes(session, execution, lifecycle.start_step(execution, now, definition.timeout))


# --- optimistic path ----------------------------------------------------------------------
def _run_optimistic(rt: runtime.Runtime, message: StepMessage) -> str | None:
    """Run the attempt on an unlocked read and write it if the row is unchanged; None
    when the atomic path must run it (under the lock, from the start)."""
    if message.attempt > 1:
        return None  # a retry: its pending step-run row needs the general path
    with rt.autocommit_engine.connect() as connection:
        read = _carried(message) or lock_execution(connection, **message.attempt_key, lock=False)
        if read is None or read[1] is not None:  # gone, or a retry, re-run or duplicate
            return None
        execution, now = read[0], datetime.now(UTC)
        if _why_not_runnable(execution, message) is not None or execution.is_past_deadline(now):
            return None
        step = execution.definition.step(message.step_id)
        # The session is for the step's ports (a set-only step uses none); the write
        # goes on the connection itself, which begins no SQLAlchemy transaction.
        session = rt.session_factory(bind=connection)
        try:
            applied = _write_optimistically(rt, connection, session, execution, step, message)
        finally:
            session.close()
    if applied is None:
        return None
    _publish(rt, applied.tickets)
    record_metrics(applied)
    return applied.label


def _carried(message: StepMessage) -> tuple[LockedExecution, None] | None:
    """The execution as the previous step's write left it, from the message: no read.
    (The write's compare-and-set rejects it if the row changed since; and a step-run
    row of this attempt, which the read would have found, makes the write's INSERT
    conflict: either way the locked path takes over.)"""
    if message.snapshot is None:
        return None
    try:
        execution = from_snapshot(message.execution_id, message.snapshot)
    except (KeyError, TypeError, ValueError) as exc:  # not what this version writes: read
        log.warning("step_snapshot_unreadable", error=repr(exc), ticket=message.outbox_id)
        return None
    return None if execution is None else (execution, None)


def _write_optimistically(  # noqa: PLR0917 - the read's parts, passed on as read
    rt: runtime.Runtime,
    connection: Connection,
    session: Session,
    execution: LockedExecution,
    step: Step,
    message: StepMessage,
) -> Applied | None:
    attempt = StepAttempt.begin(
        execution,
        execution.definition,
        step,
        branch_key="",
        attempt=message.attempt,
        run=None,
        now=datetime.now(UTC),
        settings=rt.settings,
    )
    result = _work(rt, session, attempt, deadline=None, allow_effects=False)
    if not isinstance(result, StepOutcome):
        return None
    try:
        return try_fast_write(
            connection,
            attempt,
            result,
            message.outbox_id,
            datetime.now(UTC),
            optimistic=True,
        )
    except (StaleRead, IntegrityError):
        return None  # changed since the read: the atomic path sorts it out under the lock


# --- atomic path --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Locked:
    """One atomic-path transaction: it holds the execution row lock since its first query."""

    rt: runtime.Runtime
    session: Session
    connection: Connection
    message: StepMessage
    now: datetime


def _run_atomic(rt: runtime.Runtime, message: StepMessage) -> str:
    with rt.unit_of_work() as uow:
        session = uow.session
        connection = session.connection()
        locked = lock_execution(connection, **message.attempt_key)
        if locked is None:
            return "execution_gone"
        execution, run = locked
        tx = _Locked(rt, session, connection, message, datetime.now(UTC))
        reason = _why_not_runnable(execution, message)
        if run is not None and run.status in FINISHED_RUNS:
            reason = "duplicate"
        if reason is not None:
            # The ticket is spent (resume and retry issue new ones). Under the row
            # lock, these checks also cover a ticket that is already gone: its
            # attempt is recorded, or the execution moved on.
            _consume_ticket(session, message.outbox_id)
            uow.commit()
            return reason
        if _is_early(run, tx.now):
            return "early"  # the ticket stays for the relay
        step = execution.definition.step(message.step_id)
        mode = message.mode or execution.definition.run_mode(step, message.branch_key)
        taken_over = run is not None and run.status == StepRunStatus.RUNNING
        if taken_over or mode is RunMode.EFFECTS:
            return NEEDS_EFFECTS  # rolled back: the ticket stays for the effects path
        if mode is RunMode.PLAIN and run is None and not execution.is_past_deadline(tx.now):
            applied = _run_fast(tx, execution, step)
        else:
            applied = _run_general(tx, execution.definition, step)
        _publish_after_commit(rt, uow, applied)
        uow.commit()
    record_metrics(applied)
    return applied.label


def _run_fast(tx: _Locked, execution: LockedExecution, step: Step) -> Applied:
    attempt = StepAttempt.begin(
        execution,
        execution.definition,
        step,
        branch_key="",
        attempt=tx.message.attempt,
        run=None,
        now=tx.now,
        settings=tx.rt.settings,
    )
    result = _work(tx.rt, tx.session, attempt, deadline=None, allow_effects=False)
    if isinstance(result, StepOutcome):
        outbox_id = tx.message.outbox_id
        fast = try_fast_write(tx.connection, attempt, result, outbox_id, datetime.now(UTC))
        if fast is not None:
            return fast
    # A failure, a wait, an approval, record writes or log lines: the general path
    # records the result through the ORM rows (same transaction, same lock).
    execution_row, run = _orm_rows(tx)
    return _record_general(tx, attempt.on_row(execution_row, run), result)


def _run_general(tx: _Locked, definition: Definition, step: Step) -> Applied:
    execution, run = _orm_rows(tx)
    attempt = StepAttempt.begin(
        execution,
        definition,
        step,
        branch_key=tx.message.branch_key,
        attempt=tx.message.attempt,
        run=run,
        now=tx.now,
        settings=tx.rt.settings,
    )
    if lifecycle.is_past_deadline(execution, tx.now):
        _consume_ticket(tx.session, tx.message.outbox_id)
        return fail_execution(tx.session, execution, tx.now, definition)
    result = _work(tx.rt, tx.session, attempt, deadline=None, allow_effects=False)
    return _record_general(tx, attempt, result)


def _orm_rows(tx: _Locked) -> tuple[Execution, StepRun | None]:
    """The ORM rows of the execution this transaction locked, and of the attempt."""
    execution, run = _lock_with_attempt(tx.session, tx.message)
    if execution is None:  # cannot happen: the row lock is held since lock_execution
        raise RuntimeError(f"execution {tx.message.execution_id} vanished under its lock")
    return execution, run


def _record_general(tx: _Locked, attempt: StepAttempt[Execution], result: Any) -> Applied:
    """The general path: the ORM records whatever the step decided."""
    _consume_ticket(tx.session, tx.message.outbox_id)
    _start_running(tx.session, attempt.execution, attempt.definition, tx.now)
    return _record(tx.rt, tx.session, attempt, result, datetime.now(UTC))


_FAN_OUT = "fan_out"


def _work(
    rt: runtime.Runtime,
    session: Session,
    attempt: StepAttempt,
    *,
    deadline: float | None,
    allow_effects: bool,
) -> Any:
    """Whatever the step does before its result is recorded: a StepOutcome, a StepError,
    a foreach ItemResult, or _FAN_OUT for a parallel or foreach step that starts."""
    step = attempt.step
    if step.type == "parallel" or (step.type == "foreach" and not attempt.branch_key):
        prepare_context(rt, attempt, allow_effects=allow_effects)
        return _FAN_OUT
    if is_item(step, attempt.branch_key):
        return run_attempt(
            rt,
            session,
            attempt,
            deadline=deadline,
            allow_effects=allow_effects,
            body=lambda ports, rules: run_item(session, attempt, ports, rt.renderer, rules),
        )
    return run_attempt(rt, session, attempt, deadline=deadline, allow_effects=allow_effects)


def _record(
    rt: runtime.Runtime, session: Session, attempt: StepAttempt, result: Any, now: datetime
) -> Applied:
    step = attempt.step
    if result == _FAN_OUT and step.type == "parallel":
        return fan_out(session, attempt, now)
    if result == _FAN_OUT:
        try:
            return start_foreach(session, attempt, rt.renderer, now)
        except StepError as error:
            return apply_failure(session, attempt, error, now)
    if is_item(step, attempt.branch_key):
        if isinstance(result, StepError):
            index = item_index(attempt.branch_key)
            result = ItemResult(index, BranchOutcome.from_error(result), step, result)
        return apply_item(session, attempt, result, now)
    if isinstance(result, StepError):
        return apply_failure(session, attempt, result, now)
    return apply_outcome(session, attempt, result, now)


def _publish_after_commit(rt: runtime.Runtime, uow: UnitOfWork, applied: Applied) -> None:
    if applied.tickets:
        rows = list(applied.tickets)
        uow.after_commit(lambda: _publish(rt, rows))


def _publish(rt: runtime.Runtime, rows: list[DispatchOutbox]) -> None:
    rt.publisher.publish(Ticket.from_row(row) for row in rows if is_immediate(row))


# --- effects path -------------------------------------------------------------------------
def _run_with_effects(rt: runtime.Runtime, message: StepMessage) -> str:
    with rt.db_engine.connect() as connection:
        session = rt.session_factory(bind=connection)
        locked = False
        try:
            lock = func.pg_try_advisory_lock(func.hashtextextended(message.lock_key, 0))
            locked = bool(session.scalar(select(lock)))
            if not locked:
                session.rollback()
                return "busy"  # a live process runs this attempt
            claim = _claim(rt, session, message)
            if isinstance(claim, str):
                return claim
            return _perform_and_finish(rt, session, message, claim)
        finally:
            session.close()
            if locked:
                # Session-level locks survive commits: release before the
                # connection goes back to the pool.
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
                connection.commit()


def _claim(rt: runtime.Runtime, session: Session, message: StepMessage) -> StepAttempt | str:
    """Commit the attempt as running (taking over a dead process's attempt if need be)."""
    execution = _lock_execution(session, message.execution_id)
    if execution is None:
        session.rollback()
        return "execution_gone"
    ticket = session.get(DispatchOutbox, message.outbox_id, with_for_update=True)
    if ticket is None:
        session.rollback()
        return "duplicate"
    now = datetime.now(UTC)
    reason = _why_not_runnable(execution, message)
    run = _attempt_row(session, message) if reason is None else None
    if run is not None and run.status in FINISHED_RUNS:
        reason = "duplicate"
    if reason is not None:
        session.delete(ticket)
        session.commit()
        return reason
    if _is_early(run, now):
        session.rollback()
        return "early"
    definition = Definition.from_dict(execution.definition)
    if lifecycle.is_past_deadline(execution, now):
        applied = fail_execution(session, execution, now, definition)
        session.delete(ticket)
        session.commit()
        record_metrics(applied)
        return applied.label
    step = definition.step(message.step_id)
    _start_running(session, execution, definition, now)
    attempt = StepAttempt.begin(
        execution,
        definition,
        step,
        branch_key=message.branch_key,
        attempt=message.attempt,
        run=run,
        now=now,
        settings=rt.settings,
    )
    if run is not None and run.status == StepRunStatus.RUNNING:
        log.warning("step_attempt_taken_over", execution_id=str(execution.id), step_id=step.id)
    attempt.mark_running(session, now)
    # While this attempt runs the relay leaves its ticket alone; past the step
    # limit (its process vanished with its host) the relay publishes it again.
    ticket.available_at = now + timedelta(seconds=message.limit_seconds + HARD_LIMIT_GRACE_SECONDS)
    session.commit()
    return attempt


def _perform_and_finish(
    rt: runtime.Runtime, session: Session, message: StepMessage, attempt: StepAttempt
) -> str:
    deadline = time.monotonic() + message.limit_seconds
    outcome = _work(rt, session, attempt, deadline=deadline, allow_effects=True)
    session.rollback()  # end any read-only transaction the effects opened
    execution = _lock_execution(session, message.execution_id)
    if execution is None or not _consume_ticket(session, message.outbox_id):
        session.rollback()
        return "superseded"
    now = datetime.now(UTC)
    attempt.execution = execution
    if execution.status not in RUNNABLE and execution.status != ExecutionStatus.PAUSED:
        # Cancelled or failed (timeout) meanwhile: record the attempt, change nothing else.
        _record_orphan(session, attempt, outcome, now)
        session.commit()
        return "superseded"
    applied = _record(rt, session, attempt, outcome, now)
    session.commit()
    _publish(rt, applied.tickets)
    record_metrics(applied)
    return applied.label


def _record_orphan(session: Session, attempt: StepAttempt, outcome: Any, now: datetime) -> None:
    if not isinstance(outcome, StepOutcome | StepError):
        attempt.finish_run(session, StepRunStatus.COMPLETED, now)
    elif isinstance(outcome, StepError):
        attempt.finish_run(
            session,
            StepRunStatus.FAILED,
            now,
            error_message=outcome.message,
            error_code=outcome.code[:50],
        )
    else:
        attempt.finish_run(
            session, StepRunStatus.COMPLETED, now, input=outcome.input, output=outcome.output
        )
