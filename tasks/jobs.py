"""The Celery task bodies of the background jobs: thin.

Each takes the process's runtime, calls its application service (the outbox
relay, the stuck sweeper, approval expiry and notices, the resumer, the cron
scheduler) and records the run in the worker_* metrics. The step's own task
body is tasks.step_task. Only the workers import these (import-linter).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from celery import shared_task

from monitoring import metrics
from tasks import approvals, relay, runtime, scheduler, shadow, sweeper, timers
from tasks.dispatch import RELAY_OUTBOX, SWEEP_STUCK


def _measured(worker_type: str, run: Callable[[runtime.Runtime], int]) -> int:
    """Run a job on this process's runtime; its outcome, time and items are measured."""
    rt = runtime.current()
    started = time.perf_counter()
    try:
        count = run(rt)
    except Exception:
        metrics.record_job_run(worker_type, "error", time.perf_counter() - started)
        raise
    metrics.record_job_run(worker_type, "success", time.perf_counter() - started, items=count)
    return count


@shared_task(name=RELAY_OUTBOX, ignore_result=True)
def relay_outbox() -> int:
    return _measured(relay.WORKER_TYPE, lambda rt: relay.relay_due_tickets(rt, rt.publisher))


@shared_task(name=SWEEP_STUCK, ignore_result=True)
def sweep_stuck() -> int:
    def sweep(rt: runtime.Runtime) -> int:
        now = datetime.now(UTC)
        stalled = shadow.requeue_stalled(rt.session_factory, rt.publisher.send, now)
        return sweeper.sweep(rt, now) + stalled

    return _measured(sweeper.WORKER_TYPE, sweep)


@shared_task(name=approvals.EXPIRE_APPROVALS, ignore_result=True)
def expire_approvals() -> int:
    """Expire due approvals, then send the approval notifications still owed (the
    expiries just committed, and decisions whose own task did not send them)."""

    def expire_and_announce(rt: runtime.Runtime) -> int:
        count = approvals.expire_due(rt)
        approvals.notify_owed(rt)
        return count

    return _measured(approvals.WORKER_TYPE, expire_and_announce)


@shared_task(name=approvals.NOTIFY_APPROVAL, ignore_result=True)
def notify_approval(approval_id: str) -> bool:
    return approvals.notify_decision(runtime.current(), uuid.UUID(approval_id))


@shared_task(name=timers.RESUME_DUE, ignore_result=True)
def resume_due() -> int:
    return _measured(timers.WORKER_TYPE, timers.resume_due_waits)


@shared_task(name=scheduler.FIRE_SCHEDULES, ignore_result=True)
def fire_schedules() -> int:
    return _measured(scheduler.WORKER_TYPE, scheduler.fire_due_schedules)


@shared_task(name=shadow.RUN_SHADOW, ignore_result=True)
def run_shadow(report_id: str) -> int:
    """A shadow report too long to answer inline; redelivered, it starts over."""
    return _measured(
        shadow.WORKER_TYPE,
        lambda rt: shadow.run_report(rt.session_factory, uuid.UUID(report_id), rt.renderer),
    )
