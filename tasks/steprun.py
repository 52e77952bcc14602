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

Both end in the same recording of the transition: tasks.transition collects
what the engine decided (engine.lifecycle for the execution's columns, the step
run, the tickets, an approval or a wait) in a tasks.recording.Recording, which
writes it as one statement of models.writer.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import lifecycle
from engine.definition import RunMode
from engine.errors import StepError
from engine.outcome import BranchOutcome, StepOutcome
from engine.state import ExecutionStatus, StepRunStatus
from models.db import UnitOfWork
from models.execution import DispatchOutbox
from models.writer import StaleRow
from monitoring import metrics
from tasks import runtime
from tasks.applied import Applied, record_metrics
from tasks.dispatch import HARD_LIMIT_GRACE_SECONDS, Ticket, is_immediate
from tasks.foreach import ItemResult, apply_item, is_item, item_index, run_item, start_foreach
from tasks.locking import (
    COLUMNS,
    LockedExecution,
    RunState,
    carry_snapshot,
    from_snapshot,
    lock_execution,
)
from tasks.recording import Recording
from tasks.stepping import StepAttempt, prepare_context, run_attempt
from tasks.transition import apply_failure, apply_outcome, fail_execution, fan_out, parent_step_id

log = structlog.get_logger(__name__)

RUNNABLE = frozenset({ExecutionStatus.PENDING, ExecutionStatus.RUNNING})
FINISHED_RUNS = frozenset({StepRunStatus.COMPLETED, StepRunStatus.FAILED, StepRunStatus.SKIPPED})
NEEDS_EFFECTS = "needs_effects"
# What a snapshot takes from the written columns (the context goes as the JSON sent).
_ROW_COLUMNS = frozenset(COLUMNS) - {"context"}


def run_step_message(rt: runtime.Runtime, message: Ticket) -> str:
    """Run the attempt a ticket names; returns what happened (for logs and tests)."""
    if message.sent_at:
        metrics.record_dispatch_latency(time.time() - float(message.sent_at))
    if message.mode is RunMode.EFFECTS:
        return _run_with_effects(rt, message)
    outcome = _run_unlocked(rt, message) if message.mode is RunMode.PLAIN else None
    if outcome is None:
        outcome = _run_atomic(rt, message)
    if outcome == NEEDS_EFFECTS:  # a dead process's effects attempt, or an old ticket
        outcome = _run_with_effects(rt, message)
    return outcome


# --- checks shared by both ways -----------------------------------------------------------
def _why_not_runnable(
    execution: LockedExecution, run: RunState | None, message: Ticket
) -> str | None:
    if run is not None and run.status in FINISHED_RUNS:
        return "duplicate"
    if execution.status not in RUNNABLE:
        return f"execution_{execution.status}"
    if execution.attempt_group != message.attempt_group:
        return "stale_attempt_group"
    expected = parent_step_id(message.branch_key) if message.branch_key else message.step_id
    if execution.current_step_id != expected:
        return "stale_step"
    return None


def _is_early(run: RunState | None, now: datetime) -> bool:
    """A retry attempt delivered before its backoff elapsed (an early duplicate)."""
    return (
        run is not None
        and run.status == StepRunStatus.PENDING
        and run.due_at is not None
        and run.due_at > now + timedelta(seconds=1)
    )


Read = tuple[LockedExecution, RunState | None]


def _admit(session: Session, message: Ticket) -> Read | str:
    """Lock the execution row and read the attempt: what was read, or why the attempt
    does not run now (a ticket with nothing left to do is deleted and committed:
    resume and retry issue new ones; an early one stays for the relay)."""
    connection = session.connection()
    read = lock_execution(connection, **message.attempt_key)
    if read is None:
        session.rollback()
        return "execution_gone"
    execution, run = read
    reason = _why_not_runnable(execution, run, message)
    if reason is not None:
        Recording(session, execution, outbox_id=message.outbox_id).write(connection)
        session.commit()
        return reason
    if _is_early(run, datetime.now(UTC)):
        session.rollback()
        return "early"
    return read


# --- atomic -------------------------------------------------------------------------------
def _run_unlocked(rt: runtime.Runtime, message: Ticket) -> str | None:
    """A PLAIN step first runs on an unlocked read and is written only if the row is
    unchanged since (compare-and-set on version and xmin); None when it must run
    under the lock instead (changed meanwhile, a retry, a duplicate: harmless, as
    it has no effects)."""
    if message.attempt > 1:
        return None
    with rt.autocommit_engine.connect() as connection:
        read = _carried(message) or lock_execution(connection, **message.attempt_key, lock=False)
        if read is None or read[1] is not None:
            return None
        now = datetime.now(UTC)
        if _why_not_runnable(read[0], None, message):
            return None
        # The session is for the step's reads; the write goes on the connection
        # itself, which begins no SQLAlchemy transaction.
        session = rt.session_factory(bind=connection)
        try:
            rec = Recording(session, read[0], outbox_id=message.outbox_id, unlocked=True)
            applied = _run_and_record(rt, rec, read, message, now)
            rec.write(connection)
        except (StaleRow, IntegrityError):
            return None  # changed since the read: the locked run sorts it out
        finally:
            session.close()
    _carry_snapshot(rec, applied)
    _publish(rt, applied.tickets)
    record_metrics(applied)
    return applied.label


def _run_atomic(rt: runtime.Runtime, message: Ticket) -> str:
    """Run the step inside the transaction that locks its row and records its result."""
    with rt.unit_of_work() as uow:
        session = uow.session
        read = _admit(session, message)
        if isinstance(read, str):
            return read
        execution, run = read
        now = datetime.now(UTC)
        step = execution.definition.step(message.step_id)
        mode = message.mode or execution.definition.run_mode(step, message.branch_key)
        if mode is RunMode.EFFECTS or (run is not None and run.status == StepRunStatus.RUNNING):
            return NEEDS_EFFECTS  # rolled back: the ticket stays for the effects path
        rec = Recording(session, execution, outbox_id=message.outbox_id)
        applied = _run_and_record(rt, rec, read, message, now)
        rec.write(session.connection())
        _publish_after_commit(rt, uow, applied)
        uow.commit()
    record_metrics(applied)
    return applied.label


def _run_and_record(
    rt: runtime.Runtime, rec: Recording, read: Read, message: Ticket, now: datetime
) -> Applied:
    """Run an atomic step on the row read and record its result (not yet written)."""
    execution, run = read
    definition = execution.definition
    if execution.is_past_deadline(now):
        return fail_execution(rec, now, definition)
    attempt = _begin(rt, execution, run, message, now)
    rec.change(lifecycle.start_step(execution, now, definition.timeout))
    result = _work(rt, rec.session, attempt, deadline=None, allow_effects=False)
    return _record(rt, rec, attempt, result, datetime.now(UTC))


def _begin(
    rt: runtime.Runtime,
    execution: LockedExecution,
    run: RunState | None,
    message: Ticket,
    now: datetime,
) -> StepAttempt:
    return StepAttempt.begin(
        execution,
        execution.definition,
        execution.definition.step(message.step_id),
        branch_key=message.branch_key,
        attempt=message.attempt,
        run=run,
        now=now,
        settings=rt.settings,
    )


def _carried(message: Ticket) -> Read | None:
    """The execution as the previous step's write left it, from the message: no read.
    (The write's compare-and-set rejects it if the row changed since; and a step-run
    row of this attempt, which the read would have found, makes the write's INSERT
    conflict: either way the locked run takes over.)"""
    if message.snapshot is None:
        return None
    try:
        execution = from_snapshot(message.execution_id, message.snapshot)
    except (KeyError, TypeError, ValueError) as exc:  # not what this version writes: read
        log.warning("step_snapshot_unreadable", error=repr(exc), ticket=message.outbox_id)
        return None
    return None if execution is None else (execution, None)


def _carry_snapshot(rec: Recording, applied: Applied) -> None:
    """The row as this write left it rides in the next step's published message (not in
    the stored ticket), so that step need not read it (tasks.locking.snapshot)."""
    if rec.written is None or rec.context_json is None or len(applied.tickets) != 1:
        return
    execution = rec.execution
    row = replace(
        execution,
        **{name: value for name, value in rec.changes.items() if name in _ROW_COLUMNS},
        row_xmin=rec.written.row_xmin,
    )
    carry_snapshot(applied.tickets[0], row, rec.context_json)


# What _work returns for a parallel or foreach step that starts (compared by identity).
_FAN_OUT = object()


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
    rt: runtime.Runtime, rec: Recording, attempt: StepAttempt, result: Any, now: datetime
) -> Applied:
    step = attempt.step
    if result is _FAN_OUT and step.type == "parallel":
        return fan_out(rec, attempt, now)
    if result is _FAN_OUT:
        try:
            return start_foreach(rec, attempt, rt.renderer, now)
        except StepError as error:
            return apply_failure(rec, attempt, error, now)
    if is_item(step, attempt.branch_key):
        if isinstance(result, StepError):
            index = item_index(attempt.branch_key)
            result = ItemResult(index, BranchOutcome.from_error(result), step, result)
        return apply_item(rec, attempt, result, now)
    if isinstance(result, StepError):
        return apply_failure(rec, attempt, result, now)
    return apply_outcome(rec, attempt, result, now)


def _publish_after_commit(rt: runtime.Runtime, uow: UnitOfWork, applied: Applied) -> None:
    if applied.tickets:
        rows = list(applied.tickets)
        uow.after_commit(lambda: _publish(rt, rows))


def _publish(rt: runtime.Runtime, rows: list[DispatchOutbox]) -> None:
    rt.publisher.publish(Ticket.from_row(row) for row in rows if is_immediate(row))


# --- effects ------------------------------------------------------------------------------
def _run_with_effects(rt: runtime.Runtime, message: Ticket) -> str:
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


def _has_ticket(session: Session, outbox_id: int) -> bool:
    """Whether the ticket is still there (locked: nobody else spends it meanwhile)."""
    found = session.scalar(
        select(DispatchOutbox.id).where(DispatchOutbox.id == outbox_id).with_for_update()
    )
    return found is not None


def _claim(rt: runtime.Runtime, session: Session, message: Ticket) -> StepAttempt | str:
    """Commit the attempt as running (taking over a dead process's attempt if need be)."""
    read = _admit(session, message)
    if isinstance(read, str):
        return read
    if not _has_ticket(session, message.outbox_id):
        session.rollback()
        return "duplicate"
    execution, run = read
    now = datetime.now(UTC)
    connection = session.connection()
    definition = execution.definition
    if execution.is_past_deadline(now):
        rec = Recording(session, execution, outbox_id=message.outbox_id)
        applied = fail_execution(rec, now, definition)
        rec.write(connection)
        session.commit()
        record_metrics(applied)
        return applied.label
    attempt = _begin(rt, execution, run, message, now)
    rec = Recording(session, execution)
    rec.change(lifecycle.start_step(execution, now, definition.timeout))
    attempt.mark_running(rec, now)
    # While this attempt runs the relay leaves its ticket alone; past the step
    # limit (its process vanished with its host) the relay publishes it again.
    rearmed = now + timedelta(seconds=message.limit_seconds + HARD_LIMIT_GRACE_SECONDS)
    rec.set(DispatchOutbox, message.outbox_id, {"available_at": rearmed})
    rec.write(connection)
    session.commit()
    return attempt


def _perform_and_finish(
    rt: runtime.Runtime, session: Session, message: Ticket, attempt: StepAttempt
) -> str:
    deadline = time.monotonic() + message.limit_seconds
    outcome = _work(rt, session, attempt, deadline=deadline, allow_effects=True)
    session.rollback()  # end any read-only transaction the effects opened
    connection = session.connection()
    read = lock_execution(connection, **message.attempt_key)
    if read is None or not _has_ticket(session, message.outbox_id):
        session.rollback()
        return "superseded"
    now = datetime.now(UTC)
    execution, attempt.run = read
    attempt.execution = execution
    rec = Recording(session, execution, outbox_id=message.outbox_id)
    if execution.status not in RUNNABLE and execution.status != ExecutionStatus.PAUSED:
        # Cancelled or failed (timeout) meanwhile: record the attempt, change nothing else.
        _record_orphan(rec, attempt, outcome, now)
        rec.write(connection)
        session.commit()
        return "superseded"
    applied = _record(rt, rec, attempt, outcome, now)
    rec.write(connection)
    session.commit()
    _publish(rt, applied.tickets)
    record_metrics(applied)
    return applied.label


def _record_orphan(rec: Recording, attempt: StepAttempt, outcome: Any, now: datetime) -> None:
    if isinstance(outcome, StepError):
        attempt.finish_run(
            rec,
            StepRunStatus.FAILED,
            now,
            error_message=outcome.message,
            error_code=outcome.code[:50],
        )
    elif isinstance(outcome, StepOutcome):
        attempt.finish_run(
            rec, StepRunStatus.COMPLETED, now, input=outcome.input, output=outcome.output
        )
    else:
        attempt.finish_run(rec, StepRunStatus.COMPLETED, now)
