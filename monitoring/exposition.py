"""Rendering ``/metrics``: process metrics, stored-state gauges and the directory.

Multiprocess mode's aggregated registry has no custom collectors, so
:func:`render_metrics` builds one per scrape: the multiprocess directory (or the
default registry in single-process mode), the process tree (``process.py``) and
the caller's collectors, such as a :class:`StateCollector` whose callback
queries Postgres and Redis.

Only one scrape target should carry the StateCollector (the API); if several do,
the alerts and dashboards aggregate its gauges with ``max``, not ``sum``.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import REGISTRY, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring import metrics
from monitoring.baseline import KnownSeries, fill_known_series
from monitoring.multiprocess import DirectoryCollector, archive_dead_processes, multiprocess_dir
from monitoring.process import ProcessTreeSample, sample_process_tree
from monitoring.textformat import render_text

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


@dataclass(frozen=True)
class StateSnapshot:
    """Plain numbers describing stored state, supplied by a callback at scrape time.

    Mappings are keyed by workflow slug (``executions_*``) or queue name; a key
    with 0 should still be present so that the series does not disappear.
    """

    approvals_pending: int = 0
    executions_active: Mapping[str, int] = field(default_factory=dict)
    executions_waiting: Mapping[str, int] = field(default_factory=dict)
    executions_overdue: int = 0
    executions_stuck: int = 0
    outbox_pending: int = 0
    outbox_oldest_pending_age_seconds: float = 0.0
    queue_lengths: Mapping[str, int] = field(default_factory=dict)


def _gauge(name: str, value: float | None = None, label: str | None = None) -> GaugeMetricFamily:
    spec = metrics.CATALOGUE[name]
    labels = [label] if label else None
    return GaugeMetricFamily(name, spec.documentation, value=value, labels=labels)


def _labelled(name: str, label: str, values: Mapping[str, int]) -> GaugeMetricFamily:
    family = _gauge(name, label=label)
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class StateCollector:
    """Turns a :class:`StateSnapshot` callback into gauges.

    A failing callback does not fail the scrape: the error is logged, the
    state gauges are omitted, ``monitoring_state_collector_up`` is 0 and
    ``monitoring_state_collector_errors_total`` grows (visible from the next
    scrape). Keep the callback fast: use short statement timeouts.
    """

    def __init__(self, fetch: Callable[[], StateSnapshot]) -> None:
        self._fetch = fetch

    def collect(self) -> Iterable[Metric]:
        try:
            snapshot = self._fetch()
        except Exception:
            log.exception("stored-state metrics callback failed")
            metrics.STATE_COLLECTOR_ERRORS.inc()
            return [_gauge("monitoring_state_collector_up", 0)]
        return [
            _gauge("approvals_pending", snapshot.approvals_pending),
            _labelled("active_workflow_executions", "workflow_id", snapshot.executions_active),
            _labelled("workflow_executions_waiting", "workflow_id", snapshot.executions_waiting),
            _gauge("workflow_executions_overdue", snapshot.executions_overdue),
            _gauge("workflow_executions_stuck", snapshot.executions_stuck),
            _gauge("workflow_outbox_pending", snapshot.outbox_pending),
            _gauge(
                "workflow_outbox_oldest_pending_age_seconds",
                snapshot.outbox_oldest_pending_age_seconds,
            ),
            _labelled("celery_queue_length", "queue_name", snapshot.queue_lengths),
            _gauge("monitoring_state_collector_up", 1),
        ]


class ProcessTreeCollector:
    """process_* gauges of one tree sample (the CPU counter comes from the directory)."""

    def __init__(self, sample: ProcessTreeSample | None) -> None:
        self._sample = sample

    def collect(self) -> Iterable[Metric]:
        sample = self._sample
        if sample is None:
            return []
        return [
            _gauge("process_resident_memory_bytes", sample.resident_memory_bytes),
            _gauge("process_virtual_memory_bytes", sample.virtual_memory_bytes),
            _gauge("process_open_fds", sample.open_fds),
            _gauge("process_start_time_seconds", sample.start_time_seconds),
        ]


class _CpuCounter:
    """The tree's CPU when this process does not write the directory (no high-water mark)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def collect(self) -> Iterable[Metric]:
        doc = metrics.CATALOGUE["process_cpu_seconds_total"].documentation
        return [CounterMetricFamily("process_cpu_seconds", doc, value=self._seconds)]


class _WithKnownSeries:
    """The recorded families plus a zero series for each known label set not recorded."""

    def __init__(self, recorded: Collector, known: KnownSeries | None) -> None:
        self._recorded = recorded
        self._known = known

    def collect(self) -> Iterable[Metric]:
        families = list(self._recorded.collect())
        if self._known is None:
            return families
        try:
            label_sets = self._known.label_sets()
        except Exception:  # the recorded series are still worth serving
            log.exception("known label sets could not be read; zero series omitted")
            return families
        return fill_known_series(families, label_sets)


class _Combined:
    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = list(collectors)

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        for collector in self._collectors:
            families.extend(collector.collect())
        return families


def render_metrics(
    extra_collectors: Iterable[Collector] = (),
    *,
    path: str | None = None,
    process_root_pid: int | None = None,
    sweep_dead_processes: bool = True,
    known: KnownSeries | None = None,
) -> tuple[bytes, str]:
    """The body and content type of a ``/metrics`` response.

    Multiprocess mode when ``path`` (default ``$PROMETHEUS_MULTIPROC_DIR``) is
    set: dead processes are archived first (``sweep_dead_processes``), then the
    tree rooted at ``process_root_pid`` (default: this process; pass the
    gunicorn arbiter's pid, ``os.getppid()``, from a gunicorn worker) is
    sampled. Otherwise the default registry, with its own process collector.
    ``extra_collectors`` are collected first, so their side effects on
    file-backed metrics show in the same scrape. ``known`` adds a zero series
    for each of its label sets no process recorded (``baseline.py``).
    """
    extras = list(extra_collectors)
    path = path or multiprocess_dir()
    if not path:
        body = generate_latest(_Combined([*extras, _WithKnownSeries(REGISTRY, known)]))
        return body, CONTENT_TYPE
    if sweep_dead_processes:
        archive_dead_processes(path)
    sample = sample_process_tree(process_root_pid or os.getpid())
    collectors: list[Collector] = [*extras, ProcessTreeCollector(sample)]
    if sample is not None and _writes_directory():
        metrics.PROCESS_CPU_HIGH_WATER.set(sample.cpu_seconds)
    elif sample is not None:
        collectors.append(_CpuCounter(sample.cpu_seconds))
    directory = DirectoryCollector(path, counter_like={"process_cpu_seconds_total"})
    collectors.append(_WithKnownSeries(directory, known))
    return render_text(_Combined(collectors).collect()), CONTENT_TYPE


def _writes_directory() -> bool:
    # prometheus_client picks file-backed values once, at import, from the environment.
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def start_metrics_server(
    port: int,
    addr: str = "0.0.0.0",
    extra_collectors: Iterable[Collector] = (),
    process_root_pid: int | None = None,
    *,
    in_subprocess: bool = False,
    known: KnownSeries | None = None,
) -> ThreadingHTTPServer:
    """Serve :func:`render_metrics` on ``addr:port`` from a daemon thread (or a child process).

    For a Celery worker host: start it in the main process (``worker_init``),
    which is the root of the pool's process tree. ``server.shutdown()`` stops it.
    """
    collectors = list(extra_collectors)

    class MetricsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in {"/", "/metrics"}:
                self.send_error(404)
                return
            body, content_type = render_metrics(
                collectors, process_root_pid=process_root_pid, known=known
            )
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics request: " + format, *args)

    server = ThreadingHTTPServer((addr, port), MetricsHandler)
    server.daemon_threads = True
    if in_subprocess:
        _serve_in_child(server)
    else:
        threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server


def _serve_in_child(server: ThreadingHTTPServer) -> None:
    """Serve from a forked child so a scrape never competes for the GIL of a busy process.

    The socket is bound here (so a taken port fails in the caller); the child
    serves it and exits as soon as its parent is gone.
    """
    parent = os.getpid()
    child = os.fork()
    if child:
        server.socket.close()
        return
    try:

        def exit_with_parent() -> None:
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(0)

        threading.Thread(target=exit_with_parent, daemon=True).start()
        # Everything inherited from the worker is kept for good: without this, every
        # full collection (one scrape in about 15 makes enough garbage) walks all of
        # the worker's objects, 40-60 ms of CPU (measured: bench/scrape.py's worker).
        gc.freeze()
        server.serve_forever()
    finally:
        os._exit(0)
