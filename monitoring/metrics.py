"""Every metric of the platform, defined once, and thin functions to record them.

Framework glue (Flask middleware, Celery signals, SQLAlchemy and redis hooks, job
runners) lives in ``api/`` and ``workers/`` and calls the ``record_*`` functions
below; nothing here imports a framework.

Units are base units (seconds, bytes), counters end in ``_total`` and every label
is bounded: ``path`` is the route template, ``workflow_id`` the workflow's slug,
never an execution, user or event id.

``CATALOGUE`` maps every exposed family name to its :class:`MetricSpec`. Two
sources feed a scrape:

* ``process``: recorded where the thing happens, stored by prometheus_client
  (per-process mmap files in multiprocess mode) and aggregated at scrape time;
* ``scrape``: computed by the serving process while it renders ``/metrics``,
  from stored state (``exposition.StateCollector``) or from ``/proc``
  (``process.py``); they are listed here so that the catalogue is complete.

Multiprocess gauge modes: ``live*`` for gauges describing a live process (in
flight requests, open connections: they vanish with the process); ``max`` for
timestamps that must survive their process (last job run).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from prometheus_client import Counter, Gauge, Histogram

MetricKind = Literal["counter", "gauge", "histogram"]
MetricSource = Literal["process", "scrape"]


@dataclass(frozen=True)
class MetricSpec:
    """What a family looks like in a scrape: name, type and label names."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    documentation: str
    source: MetricSource = "process"
    multiprocess_mode: str = ""
    metric: Counter | Gauge | Histogram | None = field(default=None, compare=False, repr=False)


CATALOGUE: dict[str, MetricSpec] = {}


def _add(spec: MetricSpec) -> None:
    if spec.name in CATALOGUE:
        raise ValueError(f"metric {spec.name} defined twice")
    CATALOGUE[spec.name] = spec


def _counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    if not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    metric = Counter(name, documentation, labels)
    _add(MetricSpec(name, "counter", tuple(labels), documentation, metric=metric))
    return metric


def _histogram(
    name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
) -> Histogram:
    metric = Histogram(name, documentation, labels, buckets=buckets)
    _add(MetricSpec(name, "histogram", tuple(labels), documentation, metric=metric))
    return metric


_GaugeMode = Literal["livesum", "livemax", "max"]


def _gauge(name: str, documentation: str, labels: Sequence[str], mode: _GaugeMode) -> Gauge:
    metric = Gauge(name, documentation, labels, multiprocess_mode=mode)
    _add(MetricSpec(name, "gauge", tuple(labels), documentation, "process", mode, metric))
    return metric


def _scrape_time(
    name: str, kind: MetricKind, documentation: str, labels: Sequence[str] = ()
) -> None:
    _add(MetricSpec(name, kind, tuple(labels), documentation, "scrape"))


# Buckets, in seconds or bytes.
HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
EXECUTION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
DISPATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DB_QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REDIS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
APPROVAL_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0, 86400.0, 259200.0, 604800.0)
AI_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CELERY_RUNTIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)

# Bounded label values that the recorders and preinitialisers agree on.
WORKER_TYPES = (
    "approval_expiration",
    "workflow_resumer",
    "timeout_enforcer",
    "scheduler",
    "outbox_relay",
    "stuck_sweeper",
)
JOB_STATUSES = ("success", "error")
AUTH_METHODS = ("password", "jwt", "api_key", "refresh")
AUTH_STATUSES = ("success", "failure")
AUTH_FAILURE_REASONS = (
    "invalid_credentials",
    "missing_credentials",
    "invalid_token",
    "expired_token",
    "revoked_key",
    "forbidden",
)
RATE_LIMIT_SCOPES = ("default", "auth")
CELERY_TASK_EVENTS = ("sent", "received", "started", "succeeded", "retried", "rejected", "revoked")
OTHER = "other"
"""Label value used once a user-supplied label (``event_type``) reaches its cap."""

# --- HTTP ----------------------------------------------------------------------------------
HTTP_REQUESTS = _counter(
    "http_requests_total", "HTTP requests handled.", ("method", "path", "status")
)
HTTP_REQUEST_DURATION = _histogram(
    "http_request_duration_seconds",
    "Time to handle an HTTP request.",
    ("method", "path"),
    HTTP_DURATION_BUCKETS,
)
HTTP_REQUEST_SIZE = _histogram(
    "http_request_size_bytes", "HTTP request body size.", ("method", "path"), SIZE_BUCKETS
)
HTTP_RESPONSE_SIZE = _histogram(
    "http_response_size_bytes",
    "HTTP response body size.",
    ("method", "path", "status"),
    SIZE_BUCKETS,
)
HTTP_IN_FLIGHT = _gauge(
    "http_requests_in_flight", "HTTP requests being handled now.", (), "livesum"
)

# --- workflows -----------------------------------------------------------------------------
WORKFLOW_EXECUTIONS = _counter(
    "workflow_executions_total",
    "Executions that reached a final status (completed, failed, cancelled).",
    ("workflow_id", "status", "trigger_type"),
)
WORKFLOW_EXECUTION_DURATION = _histogram(
    "workflow_execution_duration_seconds",
    "Time from the start of an execution to its final status.",
    ("workflow_id",),
    EXECUTION_BUCKETS,
)
WORKFLOW_STEP_DURATION = _histogram(
    "workflow_step_duration_seconds",
    "Time to run one step attempt.",
    ("workflow_id", "step_name", "status"),
    STEP_BUCKETS,
)
WORKFLOW_EXECUTION_ERRORS = _counter(
    "workflow_execution_errors_total",
    "Executions that failed, by error type.",
    ("workflow_id", "error_type"),
)
_scrape_time(
    "active_workflow_executions",
    "gauge",
    "Executions not yet finished (pending, running, waiting, paused), from Postgres.",
    ("workflow_id",),
)
EVENTS_RECEIVED = _counter("events_received_total", "Events accepted.", ("event_type",))
WORKFLOW_STEP_RETRIES = _counter(
    "workflow_step_retries_total",
    "Automatic step retries scheduled.",
    ("workflow_id", "step_name"),
)
WORKFLOW_DISPATCH_LATENCY = _histogram(
    "workflow_dispatch_latency_seconds",
    "Time from the commit that scheduled a step to the start of its task.",
    (),
    DISPATCH_BUCKETS,
)
_scrape_time(
    "workflow_executions_waiting",
    "gauge",
    "Executions waiting for an event, a time or an approval, from Postgres.",
    ("workflow_id",),
)
_scrape_time(
    "workflow_executions_overdue",
    "gauge",
    "Waiting executions whose resume time passed more than the grace period ago.",
)
_scrape_time(
    "workflow_executions_stuck",
    "gauge",
    "Running executions whose current step has not progressed within its limit.",
)
_scrape_time("workflow_outbox_pending", "gauge", "Dispatches committed but not yet relayed.")
_scrape_time(
    "workflow_outbox_oldest_pending_age_seconds",
    "gauge",
    "Age of the oldest dispatch committed but not yet relayed (0 when none).",
)

# --- database ------------------------------------------------------------------------------
DB_CONNECTIONS_ACTIVE = _gauge(
    "db_connections_active", "Database connections checked out of the pool.", (), "livesum"
)
DB_POOL_SIZE = _gauge(
    "db_pool_size", "Configured database pool size, summed over processes.", (), "livesum"
)
DB_CONNECTIONS_FAILED = _counter(
    "db_connections_failed_total", "Failed attempts to connect to a database.", ("database",)
)
DB_QUERY_DURATION = _histogram(
    "db_query_duration_seconds",
    "Time to run one SQL statement.",
    ("query_type", "table"),
    DB_QUERY_BUCKETS,
)
DB_QUERY_ERRORS = _counter(
    "db_query_errors_total", "SQL statements that raised.", ("query_type", "error_type")
)

# --- redis ---------------------------------------------------------------------------------
REDIS_CONNECTIONS_ACTIVE = _gauge(
    "redis_connections_active", "Open Redis connections.", (), "livesum"
)
REDIS_CONNECTIONS_FAILED = _counter(
    "redis_connections_failed_total", "Failed attempts to connect to Redis."
)
REDIS_OPERATION_DURATION = _histogram(
    "redis_operations_duration_seconds",
    "Time to run one Redis command.",
    ("operation",),
    REDIS_BUCKETS,
)
REDIS_OPERATION_ERRORS = _counter(
    "redis_operations_errors_total", "Redis commands that raised.", ("operation",)
)

# --- business ------------------------------------------------------------------------------
APPROVALS = _counter(
    "approvals_total",
    "Approval requests by outcome (requested, approved, rejected, expired).",
    ("status", "workflow_id"),
)
APPROVAL_DURATION = _histogram(
    "approvals_duration_seconds",
    "Time from an approval request to its decision or expiry.",
    ("workflow_id",),
    APPROVAL_BUCKETS,
)
_scrape_time("approvals_pending", "gauge", "Approval requests awaiting a decision, from Postgres.")
NOTIFICATIONS_SENT = _counter(
    "notifications_sent_total", "Notifications attempted.", ("type", "status")
)
AI_REQUESTS = _counter("ai_requests_total", "Requests to an AI model.", ("model", "status"))
AI_REQUEST_DURATION = _histogram(
    "ai_request_duration_seconds", "Time of one AI model request.", ("model",), AI_BUCKETS
)

# --- background jobs -----------------------------------------------------------------------
WORKER_JOBS_PROCESSED = _counter(
    "worker_jobs_processed_total",
    "Background job runs by outcome (success, error).",
    ("worker_type", "status"),
)
WORKER_JOB_DURATION = _histogram(
    "worker_job_duration_seconds", "Time of one background job run.", ("worker_type",), JOB_BUCKETS
)
WORKER_ERRORS = _counter(
    "worker_errors_total", "Background job runs that failed.", ("worker_type",)
)
WORKER_JOB_ITEMS = _counter(
    "worker_job_items_total",
    "Rows a background job acted on (approvals expired, executions resumed, dispatches relayed).",
    ("worker_type",),
)
WORKER_LAST_RUN = _gauge(
    "worker_last_run_timestamp_seconds",
    "Unix time of the last finished run of a background job.",
    ("worker_type",),
    "max",
)

# --- auth ----------------------------------------------------------------------------------
AUTH_REQUESTS = _counter("auth_requests_total", "Authentication attempts.", ("method", "status"))
AUTH_FAILURES = _counter("auth_failures_total", "Failed authentications.", ("reason",))
AUTH_TOKEN_VALIDATIONS = _counter(
    "auth_token_validations_total", "Token validations by result.", ("valid",)
)
RATE_LIMITED_REQUESTS = _counter(
    "rate_limited_requests_total", "Requests refused by a rate limit.", ("scope",)
)

# --- celery (danihodovic/celery-exporter names and labels) ---------------------------------
_TASK_LABELS = ("name", "hostname", "queue_name")
CELERY_TASK_EVENT_COUNTERS: dict[str, Counter] = {
    event: _counter(f"celery_task_{event}_total", f"Tasks {event}.", _TASK_LABELS)
    for event in CELERY_TASK_EVENTS
}
CELERY_TASK_FAILED = _counter(
    "celery_task_failed_total", "Tasks failed.", (*_TASK_LABELS, "exception")
)
CELERY_TASK_RUNTIME = _histogram(
    "celery_task_runtime",
    "Task runtime in seconds, all outcomes.",
    _TASK_LABELS,
    CELERY_RUNTIME_BUCKETS,
)
_scrape_time(
    "celery_queue_length",
    "gauge",
    "Messages waiting in a queue (Redis LLEN over its priority sub-queues).",
    ("queue_name",),
)
CELERY_WORKER_UP = _gauge(
    "celery_worker_up", "1 while the worker is consuming.", ("hostname",), "livemax"
)
CELERY_WORKER_TASKS_ACTIVE = _gauge(
    "celery_worker_tasks_active", "Tasks executing now on a worker.", ("hostname",), "livesum"
)
CELERY_ACTIVE_WORKER_COUNT = _gauge(
    "celery_active_worker_count",
    "Workers consuming a queue (this host's share: sum over targets).",
    ("queue_name",),
    "livesum",
)

# --- process (scrape time: see process.py) -------------------------------------------------
_scrape_time(
    "process_cpu_seconds_total",
    "counter",
    "CPU seconds (user and system) of the serving process tree, reaped children included.",
)
_scrape_time(
    "process_resident_memory_bytes", "gauge", "Resident memory summed over the process tree."
)
_scrape_time(
    "process_virtual_memory_bytes", "gauge", "Virtual memory summed over the process tree."
)
_scrape_time("process_open_fds", "gauge", "Open file descriptors summed over the process tree.")
_scrape_time(
    "process_start_time_seconds", "gauge", "Start time of the tree's root process, Unix time."
)

# --- monitoring itself ---------------------------------------------------------------------
STATE_COLLECTOR_ERRORS = _counter(
    "monitoring_state_collector_errors_total",
    "Scrapes whose stored-state callback failed (its gauges were omitted).",
)
_scrape_time(
    "monitoring_state_collector_up",
    "gauge",
    "1 if the stored-state callback succeeded during this scrape, else 0.",
)
# The high-water mark that keeps the tree's CPU counter monotonic whichever process
# serves a scrape; exported as process_cpu_seconds_total (see exposition.py).
PROCESS_CPU_HIGH_WATER = Gauge(
    "process_cpu_seconds_total",
    CATALOGUE["process_cpu_seconds_total"].documentation,
    multiprocess_mode="max",
    registry=None,
)


# --- recorders -----------------------------------------------------------------------------
def record_http_request(  # noqa: PLR0917 - the signature the middleware was promised
    method: str,
    path: str,
    status: int | str,
    duration_s: float,
    request_bytes: int,
    response_bytes: int,
) -> None:
    """``path`` must be the route template (``/api/v1/workflows/<id>``), never the raw URL."""
    HTTP_REQUESTS.labels(method, path, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method, path).observe(duration_s)
    HTTP_REQUEST_SIZE.labels(method, path).observe(request_bytes)
    HTTP_RESPONSE_SIZE.labels(method, path, str(status)).observe(response_bytes)


def enter_in_flight() -> None:
    HTTP_IN_FLIGHT.inc()


def exit_in_flight() -> None:
    HTTP_IN_FLIGHT.dec()


@contextmanager
def track_in_flight() -> Iterator[None]:
    enter_in_flight()
    try:
        yield
    finally:
        exit_in_flight()


@lru_cache(maxsize=4096)
def _child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, looked up once per label set: ``labels`` validates and
    converts its values on every call, and a step pays several. Every label is bounded
    (above), so the cache is; a child stays the metric's own for the process's life."""
    return metric.labels(*values)


def record_execution_finished(
    workflow_slug: str,
    status: str,
    trigger_type: str,
    duration_s: float,
    error_type: str | None = None,
) -> None:
    """Call once, when an execution reaches completed, failed or cancelled."""
    _child(WORKFLOW_EXECUTIONS, workflow_slug, status, trigger_type).inc()
    _child(WORKFLOW_EXECUTION_DURATION, workflow_slug).observe(duration_s)
    if error_type:
        WORKFLOW_EXECUTION_ERRORS.labels(workflow_slug, error_type).inc()


def record_step(workflow_slug: str, step_name: str, status: str, duration_s: float) -> None:
    _child(WORKFLOW_STEP_DURATION, workflow_slug, step_name, status).observe(duration_s)


def record_step_retry(workflow_slug: str, step_name: str) -> None:
    WORKFLOW_STEP_RETRIES.labels(workflow_slug, step_name).inc()


class _LabelCap:
    """Caps a user-supplied label at ``limit`` distinct values per process."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


_event_type_cap = _LabelCap(200)


def record_event_received(event_type: str) -> None:
    EVENTS_RECEIVED.labels(_event_type_cap(event_type)).inc()


def record_dispatch_latency(latency_s: float) -> None:
    WORKFLOW_DISPATCH_LATENCY.observe(max(latency_s, 0.0))


def record_db_query(query_type: str, table: str, duration_s: float) -> None:
    _child(DB_QUERY_DURATION, query_type, table).observe(duration_s)


def record_db_query_error(query_type: str, error_type: str) -> None:
    DB_QUERY_ERRORS.labels(query_type, error_type).inc()


def record_db_connection_failure(database: str) -> None:
    DB_CONNECTIONS_FAILED.labels(database).inc()


def record_db_checkout() -> None:
    DB_CONNECTIONS_ACTIVE.inc()


def record_db_checkin() -> None:
    DB_CONNECTIONS_ACTIVE.dec()


def set_db_pool_size(size: int) -> None:
    """This process's pool size (pool_size + max_overflow); processes are summed."""
    DB_POOL_SIZE.set(size)


def record_redis_operation(operation: str, duration_s: float) -> None:
    _child(REDIS_OPERATION_DURATION, operation).observe(duration_s)


def record_redis_error(operation: str) -> None:
    REDIS_OPERATION_ERRORS.labels(operation).inc()


def record_redis_connection_failure() -> None:
    REDIS_CONNECTIONS_FAILED.inc()


def set_redis_connections_active(count: int) -> None:
    REDIS_CONNECTIONS_ACTIVE.set(count)


def record_approval(workflow_slug: str, status: str, duration_s: float | None = None) -> None:
    """``status``: requested, approved, rejected or expired; duration once decided."""
    APPROVALS.labels(status, workflow_slug).inc()
    if duration_s is not None:
        APPROVAL_DURATION.labels(workflow_slug).observe(duration_s)


def record_notification(notification_type: str, status: str) -> None:
    NOTIFICATIONS_SENT.labels(notification_type, status).inc()


def record_ai_request(model: str, status: str, duration_s: float | None) -> None:
    """``duration_s`` None: no model was called (AI not configured), nothing to time."""
    AI_REQUESTS.labels(model, status).inc()
    if duration_s is not None:
        AI_REQUEST_DURATION.labels(model).observe(duration_s)


def record_job_run(
    worker_type: str,
    status: str,
    duration_s: float,
    items: int = 0,
    finished_at: float | None = None,
) -> None:
    """One run of a background job; ``status`` is ``success`` or ``error``."""
    WORKER_JOBS_PROCESSED.labels(worker_type, status).inc()
    WORKER_JOB_DURATION.labels(worker_type).observe(duration_s)
    if status != "success":
        WORKER_ERRORS.labels(worker_type).inc()
    if items:
        WORKER_JOB_ITEMS.labels(worker_type).inc(items)
    WORKER_LAST_RUN.labels(worker_type).set(time.time() if finished_at is None else finished_at)


def record_auth_request(method: str, status: str) -> None:
    AUTH_REQUESTS.labels(method, status).inc()


def record_auth_failure(reason: str) -> None:
    AUTH_FAILURES.labels(reason).inc()


def record_token_validation(valid: bool) -> None:
    AUTH_TOKEN_VALIDATIONS.labels("true" if valid else "false").inc()


def record_rate_limited(scope: str) -> None:
    RATE_LIMITED_REQUESTS.labels(scope).inc()


def record_celery_task_event(event: str, name: str, hostname: str, queue_name: str) -> None:
    """``event`` is one of CELERY_TASK_EVENTS; failures go to record_celery_task_failed."""
    _child(CELERY_TASK_EVENT_COUNTERS[event], name, hostname, queue_name).inc()


def record_celery_task_failed(name: str, hostname: str, queue_name: str, exception: str) -> None:
    """``exception`` is the exception's class name."""
    CELERY_TASK_FAILED.labels(name, hostname, queue_name, exception).inc()


def record_celery_task_runtime(name: str, hostname: str, queue_name: str, runtime_s: float) -> None:
    _child(CELERY_TASK_RUNTIME, name, hostname, queue_name).observe(runtime_s)


def record_celery_task_active(hostname: str, delta: int) -> None:
    """+1 at task_prerun, -1 at task_postrun (a killed child's share vanishes with it)."""
    _child(CELERY_WORKER_TASKS_ACTIVE, hostname).inc(delta)


def set_celery_worker_up(hostname: str, queues: Iterable[str], up: bool) -> None:
    """Call from the worker's main process at worker_ready (True) and shutdown (False)."""
    CELERY_WORKER_UP.labels(hostname).set(1 if up else 0)
    for queue_name in queues:
        CELERY_ACTIVE_WORKER_COUNT.labels(queue_name).set(1 if up else 0)


# --- zero-valued children, so that increase() sees the first event ------------------------
def preinitialise_celery_task_counters(
    task_names: Iterable[str], hostname: str, queue_name: str, exceptions: Iterable[str] = ()
) -> None:
    exceptions = tuple(exceptions)
    for name in task_names:
        for counter in CELERY_TASK_EVENT_COUNTERS.values():
            counter.labels(name, hostname, queue_name)
        for exception in exceptions:
            CELERY_TASK_FAILED.labels(name, hostname, queue_name, exception)
        CELERY_TASK_RUNTIME.labels(name, hostname, queue_name)


def preinitialise_celery_worker_gauges(hostname: str) -> None:
    """celery_worker_tasks_active at 0 before the first task (a livesum of +1/-1s)."""
    CELERY_WORKER_TASKS_ACTIVE.labels(hostname)


def preinitialise_worker_job_metrics(types: Iterable[str] = WORKER_TYPES) -> None:
    """All but the last-run timestamp, which must stay absent until a real run."""
    for worker_type in types:
        for status in JOB_STATUSES:
            WORKER_JOBS_PROCESSED.labels(worker_type, status)
        WORKER_JOB_DURATION.labels(worker_type)
        WORKER_ERRORS.labels(worker_type)
        WORKER_JOB_ITEMS.labels(worker_type)


def preinitialise_auth_metrics(
    methods: Iterable[str] = AUTH_METHODS,
    reasons: Iterable[str] = AUTH_FAILURE_REASONS,
    scopes: Iterable[str] = RATE_LIMIT_SCOPES,
) -> None:
    for method in methods:
        for status in AUTH_STATUSES:
            AUTH_REQUESTS.labels(method, status)
    for reason in reasons:
        AUTH_FAILURES.labels(reason)
    for valid in ("true", "false"):
        AUTH_TOKEN_VALIDATIONS.labels(valid)
    for scope in scopes:
        RATE_LIMITED_REQUESTS.labels(scope)


def preinitialise_connection_metrics(databases: Iterable[str] = ("postgres",)) -> None:
    for database in databases:
        DB_CONNECTIONS_FAILED.labels(database)


# DBAPI error classes (PEP 249) and statement kinds: a bounded set to start at 0.
DB_ERROR_TYPES = (
    "IntegrityError",
    "OperationalError",
    "ProgrammingError",
    "DataError",
    "InternalError",
)
DB_QUERY_TYPES = ("select", "insert", "update", "delete", "other")


def preinitialise_error_counters(redis_operations: Iterable[str] = ()) -> None:
    """Error counters at 0 for the label values they can take, so the first error shows."""
    for query_type in DB_QUERY_TYPES:
        for error_type in DB_ERROR_TYPES:
            DB_QUERY_ERRORS.labels(query_type, error_type)
    for operation in redis_operations:
        REDIS_OPERATION_ERRORS.labels(operation)


def __getattr__(name: str) -> Any:
    # Lazy re-export: exposition imports this module, so a top-level import would cycle.
    if name in {"render_metrics", "StateCollector", "StateSnapshot"}:
        from monitoring import exposition

        return getattr(exposition, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
