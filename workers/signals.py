"""Celery signals: fork hygiene and the celery_* metrics, recorded inside the processes.

Names and labels follow danihodovic/celery-exporter (SPEC §6). `sent` is counted
by tasks.dispatch (the API publishes too); everything else is counted here.
"""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from celery import Celery
from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_received,
    task_rejected,
    task_retry,
    task_revoked,
    task_success,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from sqlalchemy import Engine

from models.db import make_db_engine
from models.enabled_workflows import enabled_workflows
from monitoring import metrics
from monitoring.baseline import WORKER_FAMILIES, KnownLabels, KnownSeries, KnownWorkflow
from tasks import runtime
from tasks.dispatch import QUEUE, TASK_NAMES

log = structlog.get_logger(__name__)
_started: dict[str, float] = {}
# Exceptions preinitialised so that increase() sees their first occurrence.
KNOWN_EXCEPTIONS = (
    "SoftTimeLimitExceeded",
    "TimeLimitExceeded",
    "OperationalError",
    "WorkerLostError",
)


def _hostname(task: Any) -> str:
    request = getattr(task, "request", None)
    return (getattr(request, "hostname", None) or "unknown") if request else "unknown"


def _queue(request: Any) -> str:
    info = getattr(request, "delivery_info", None) or {}
    return info.get("routing_key") or QUEUE


def _on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    hostname = str(getattr(sender, "hostname", None) or getattr(request, "hostname", "unknown"))
    metrics.record_celery_task_event("received", request.name, hostname, _queue(request))


def _on_prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
    _started[task_id] = time.perf_counter()
    hostname = _hostname(task)
    metrics.record_celery_task_event("started", task.name, hostname, _queue(task.request))
    metrics.record_celery_task_active(hostname, +1)


def _on_postrun(task_id: str = "", task: Any = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    hostname = _hostname(task)
    metrics.record_celery_task_active(hostname, -1)
    if started is not None:
        metrics.record_celery_task_runtime(
            task.name, hostname, _queue(task.request), time.perf_counter() - started
        )


def _on_success(sender: Any = None, **_: Any) -> None:
    metrics.record_celery_task_event(
        "succeeded", sender.name, _hostname(sender), _queue(sender.request)
    )


def _on_failure(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    metrics.record_celery_task_failed(
        sender.name, _hostname(sender), _queue(sender.request), type(exception).__name__
    )


def _on_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
    metrics.record_celery_task_event("retried", sender.name, _hostname(sender), _queue(request))


def _on_rejected(sender: Any = None, message: Any = None, **_: Any) -> None:
    headers = getattr(message, "headers", None) or {}
    info = getattr(message, "delivery_info", None) or {}
    hostname = getattr(sender, "hostname", None) or "unknown"
    metrics.record_celery_task_event(
        "rejected", headers.get("task", "unknown"), hostname, info.get("routing_key") or QUEUE
    )


def _on_revoked(sender: Any = None, request: Any = None, **_: Any) -> None:
    name = str(getattr(sender, "name", None) or getattr(request, "name", "unknown"))
    metrics.record_celery_task_event(
        "revoked", name, getattr(request, "hostname", None) or "unknown", _queue(request)
    )


def _on_process_init(**_: Any) -> None:
    # The parent's pooled database connections must never be used by a child.
    runtime.reset_after_fork()


def _on_process_shutdown(**_: Any) -> None:
    from monitoring import multiprocess

    if multiprocess.multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())


def _on_worker_init(**_: Any) -> None:
    """In the worker's main process, before the pool forks: a fresh metrics directory
    and the host's /metrics endpoint (SPEC §6: each worker host serves its own)."""
    from monitoring import exposition, multiprocess

    directory = multiprocess.multiprocess_dir()
    if directory:
        multiprocess.prepare_directory(directory)
    settings = runtime.current().settings
    port = settings.worker_metrics_port
    try:
        # In its own process: the worker's main loop must not slow scrapes down (and back).
        exposition.start_metrics_server(
            port,
            process_root_pid=os.getpid(),
            in_subprocess=True,
            known=KnownSeries(_KnownLabelsReader(settings.database_url), WORKER_FAMILIES),
        )
    except OSError as exc:  # another worker on this host already serves the port
        log.warning("worker_metrics_port_unavailable", port=port, error=str(exc))


class _KnownLabelsReader:
    """The enabled workflows, for the zero series of the worker host's /metrics.

    Called in the metrics server's process (forked from the main process), which
    builds its own one-connection engine on first use: nothing is shared across the fork.
    One statement in autocommit, its timeout set at connect: a scrape waits for one
    round trip to Postgres, not four (BEGIN, SET LOCAL, SELECT, ROLLBACK).
    """

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._db_engine: Engine | None = None

    def __call__(self) -> KnownLabels:
        if self._db_engine is None:
            self._db_engine = make_db_engine(
                self._database_url,
                pool_size=1,
                application_name="iw-worker-metrics",
                autocommit=True,
                statement_timeout_ms=2000,
            )
        with self._db_engine.connect() as connection:
            rows = enabled_workflows(connection)
        return KnownLabels(workflows=[KnownWorkflow(*row) for row in rows])


def _on_ready(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", "unknown")
    metrics.preinitialise_worker_job_metrics()
    if _celery_family[0]:
        metrics.preinitialise_celery_task_counters(
            _our_task_names(sender), hostname, QUEUE, KNOWN_EXCEPTIONS
        )
        metrics.set_celery_worker_up(hostname, [QUEUE], True)
        metrics.preinitialise_celery_worker_gauges(hostname)


def _our_task_names(consumer: Any) -> tuple[str, ...]:
    """Every task this worker registered under our `workflows.` prefix (the step task,
    the beat jobs, notifications), so none starts its counters unseen."""
    registry = getattr(getattr(consumer, "app", None), "tasks", {})
    names = {name for name in registry if name.startswith("workflows.")}
    return tuple(sorted(names | set(TASK_NAMES)))


def _on_shutdown(sender: Any = None, **_: Any) -> None:
    if _celery_family[0]:
        metrics.set_celery_worker_up(getattr(sender, "hostname", "unknown"), [QUEUE], False)


# Whether this process emits the celery_* family (Settings.celery_metrics_enabled).
_celery_family = [True]


def connect(celery_app: Celery, *, celery_metrics: bool = True) -> None:
    """Connect every handler once per process (`dispatch_uid` makes this idempotent).

    With `celery_metrics` off, the celery_* family is left to an external exporter;
    the process lifecycle handlers (fork handling, metrics directory) stay.
    """
    _celery_family[0] = celery_metrics
    celery_family = (
        (task_received, _on_received),
        (task_prerun, _on_prerun),
        (task_postrun, _on_postrun),
        (task_success, _on_success),
        (task_failure, _on_failure),
        (task_retry, _on_retry),
        (task_rejected, _on_rejected),
        (task_revoked, _on_revoked),
    )
    lifecycle = (
        (worker_init, _on_worker_init),
        (worker_process_init, _on_process_init),
        (worker_process_shutdown, _on_process_shutdown),
        (worker_ready, _on_ready),
        (worker_shutdown, _on_shutdown),
    )
    for signal, handler in (*(celery_family if celery_metrics else ()), *lifecycle):
        signal.connect(handler, weak=False, dispatch_uid=f"iw-{handler.__name__}")
