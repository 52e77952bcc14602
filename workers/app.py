"""The Celery application: composition root of the worker and beat processes.

`celery -A workers.app worker` and `celery -A workers.app beat` find `app`
through the module `__getattr__` below, so importing this module builds
nothing; the app is built from Settings (environment) on first access.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from models.config import Settings, load_settings
from tasks import runtime
from tasks.approvals import EXPIRE_APPROVALS
from tasks.dispatch import (
    QUEUE,
    RELAY_OUTBOX,
    SWEEP_STUCK,
    connect_publish_metrics,
    publisher_config,
)
from tasks.scheduler import FIRE_SCHEDULES
from tasks.timers import RESUME_DUE

TASK_MODULES = ("tasks.step_task", "tasks.jobs")
DEFAULT_RELAY_INTERVAL_SECONDS = 1.0
DEFAULT_SWEEP_INTERVAL_SECONDS = 15.0
DEFAULT_APPROVAL_EXPIRATION_INTERVAL_SECONDS = 5.0
DEFAULT_RESUMER_INTERVAL_SECONDS = 1.0
DEFAULT_SCHEDULER_INTERVAL_SECONDS = 5.0


def celery_config(settings: Settings) -> dict[str, Any]:
    intervals = settings.job_interval_seconds
    relay_every = float(intervals.get("outbox_relay", DEFAULT_RELAY_INTERVAL_SECONDS))
    sweep_every = float(intervals.get("stuck_sweeper", DEFAULT_SWEEP_INTERVAL_SECONDS))
    expiry_every = float(
        intervals.get("approval_expiration", DEFAULT_APPROVAL_EXPIRATION_INTERVAL_SECONDS)
    )
    resume_every = float(intervals.get("workflow_resumer", DEFAULT_RESUMER_INTERVAL_SECONDS))
    schedule_every = float(intervals.get("scheduler", DEFAULT_SCHEDULER_INTERVAL_SECONDS))
    return {
        **publisher_config(settings.broker_url),
        # A step's message is acknowledged only after the step's transaction
        # committed, and a child killed mid-step gives its message back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Four messages reserved per process. With prefetch 1 each process
        # idles for a broker round trip between steps (measured: 1.5-2x fewer
        # steps/s in bench/engine.py). The usual risk of prefetching (messages
        # lost or held with a dead worker host) does not apply here: their
        # tickets are relayed again 15 s after their commit (tasks.dispatch:
        # no ack emulation). `--prefetch-multiplier 1` restores strict
        # fairness for sites whose steps are long.
        "worker_prefetch_multiplier": 4,
        "worker_concurrency": settings.worker_concurrency,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "beat_schedule": {
            "outbox-relay": {
                "task": RELAY_OUTBOX,
                "schedule": relay_every,
                # A relay run older than its interval is pointless: the next one covers it.
                "options": {"queue": QUEUE, "expires": max(relay_every * 5, 5.0)},
            },
            "stuck-sweeper": {
                "task": SWEEP_STUCK,
                "schedule": sweep_every,
                "options": {"queue": QUEUE, "expires": max(sweep_every * 2, 10.0)},
            },
            "approval-expiration": {
                "task": EXPIRE_APPROVALS,
                "schedule": expiry_every,
                "options": {"queue": QUEUE, "expires": max(expiry_every * 2, 5.0)},
            },
            "workflow-resumer": {
                "task": RESUME_DUE,
                "schedule": resume_every,
                "options": {"queue": QUEUE, "expires": max(resume_every * 5, 5.0)},
            },
            "scheduler": {
                "task": FIRE_SCHEDULES,
                "schedule": schedule_every,
                "options": {"queue": QUEUE, "expires": max(schedule_every * 2, 10.0)},
            },
        },
        "beat_max_loop_interval": min(relay_every, 5.0),
    }


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    runtime.configure(settings)
    celery_app = Celery("workflows", set_as_current=True)
    celery_app.conf.update(celery_config(settings))
    celery_app.conf.include = list(TASK_MODULES)
    from workers import signals

    signals.connect(celery_app, celery_metrics=settings.celery_metrics_enabled)
    if settings.celery_metrics_enabled:
        connect_publish_metrics()
    return celery_app


_built: dict[str, Celery] = {}


def get_app() -> Celery:
    if "app" not in _built:
        _built["app"] = make_celery()
    return _built["app"]


def __getattr__(name: str) -> Any:
    # `celery -A workers.app` reads `workers.app.app`: build it on first access.
    if name in {"app", "celery"}:
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
