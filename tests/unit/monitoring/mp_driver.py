"""Runs multiprocess scenarios in a fresh interpreter and prints JSON results.

prometheus_client chooses file-backed values once, when it is imported, from
PROMETHEUS_MULTIPROC_DIR; the pytest process has long imported it in
single-process mode. Tests therefore run this module with
``python -m tests.unit.monitoring.mp_driver SCENARIO`` and the variable set to a
temporary directory. Children are forked so that they write real per-pid files.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    raise SystemExit("set PROMETHEUS_MULTIPROC_DIR")

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client import multiprocess as _upstream
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metrics
from monitoring import multiprocess as mp
from monitoring.baseline import KnownLabels, KnownSeries, KnownWorkflow
from monitoring.exposition import StateCollector, StateSnapshot, render_metrics
from monitoring.textformat import render_text

DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
upstream: Any = _upstream  # untyped

# Gauges in every mode, outside the catalogue (registry=None: files only).
MODE_GAUGES = {
    mode: Gauge(
        f"test_gauge_{mode}", f"A {mode} gauge.", ["k"], multiprocess_mode=mode, registry=None
    )
    for mode in ("max", "min", "sum", "mostrecent", "livesum", "livemax", "all")
}
TEST_COUNTER = Counter("test_events_total", "Events.", ["k"], registry=None)
TEST_HISTOGRAM = Histogram("test_duration_seconds", "Durations.", ["k"], registry=None)


def scrape() -> bytes:
    return generate_latest(mp.DirectoryCollector(DIR))


def files() -> list[str]:
    return sorted(name for name in os.listdir(DIR) if name.endswith(".db"))


def directory_bytes() -> int:
    return sum(os.path.getsize(os.path.join(DIR, name)) for name in files())


def run_child(body: Callable[[int], None], index: int) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            body(index)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return pid


def record_everything(index: int, dyadic: bool = True) -> None:
    rng = random.Random(index)
    for k in ("a", "b", "c"):
        TEST_COUNTER.labels(k).inc(index + 1)
        for _ in range(5):
            value = rng.choice((0.125, 0.5, 2.0, 8.0)) if dyadic else rng.random() * 3
            TEST_HISTOGRAM.labels(k).observe(value)
        for mode, gauge in MODE_GAUGES.items():
            gauge.labels(k).set(index * 10 + (ord(k) - 96) + (0.5 if mode == "min" else 0))
            time.sleep(0.0001)  # distinct mostrecent timestamps
    metrics.record_http_request("GET", "/api/v1/workflows", 200, 0.25, 64, 512)
    metrics.record_job_run("outbox_relay", "success", 0.5, items=2, finished_at=1000.0 + index)


def values(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def without_all_mode(body: bytes) -> bytes:
    return b"".join(
        line for line in body.splitlines(keepends=True) if b"test_gauge_all" not in line
    )


def scenario_identity(children: int, dyadic: bool) -> dict[str, Any]:
    pids = [run_child(lambda i: record_everything(i, dyadic), i) for i in range(children)]
    for pid in pids:
        upstream.mark_process_dead(pid, DIR)  # what upstream leaves behind
    before, files_before = scrape(), files()
    upstream_body = generate_latest(upstream.MultiProcessCollector(None, DIR))
    archived = mp.archive_dead_processes(DIR)
    after, files_after = scrape(), files()
    return {
        "archived": len(archived),
        "children": children,
        "files_before": len(files_before),
        "files_after": files_after,
        "identical_without_all_mode": without_all_mode(before) == without_all_mode(after),
        "all_mode_pid_series_before": before.count(b"test_gauge_all{"),
        "all_mode_pid_series_after": after.count(b"test_gauge_all{"),
        "before": {repr(k): v for k, v in values(before).items()},
        "after": {repr(k): v for k, v in values(after).items()},
        "upstream_before": {repr(k): v for k, v in values(upstream_body).items()},
    }


def counter_total(body: bytes) -> float:
    return values(body).get(("test_events_total", (("k", "a"),)), 0.0)


def scenario_recycle(children: int) -> dict[str, Any]:
    def work(_: int) -> None:
        TEST_COUNTER.labels("a").inc()
        TEST_HISTOGRAM.labels("a").observe(0.5)
        MODE_GAUGES["livesum"].labels("a").inc()

    totals, file_counts = [], []
    for index in range(children):
        pid = run_child(work, index)
        mp.mark_process_dead(pid, DIR)  # gunicorn child_exit / Celery worker_process_shutdown
        totals.append(counter_total(scrape()))
        file_counts.append(len(files()))
    return {"totals": totals, "file_counts": file_counts, "files": files()}


def scenario_sweep(children: int) -> dict[str, Any]:
    read, write = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            TEST_COUNTER.labels("a").inc()
            MODE_GAUGES["livesum"].labels("a").inc()
            os.write(write, b".")
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
    ready = b""
    while len(ready) < children:  # every child has written its metrics
        ready += os.read(read, children)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    live_before = values(scrape()).get(("test_gauge_livesum", (("k", "a"),)))
    files_before = len(files())
    body, content_type = render_metrics(path=DIR)
    return {
        "files_before": files_before,
        "files_after": len(files()),
        "livesum_before": live_before,
        "livesum_after": values(body).get(("test_gauge_livesum", (("k", "a"),))),
        "counter_after": counter_total(body),
        "content_type": content_type,
    }


def scenario_race(children: int) -> dict[str, Any]:
    """A scraping process checks monotonicity while processes die and are archived."""
    read, write = os.pipe()
    scraper = os.fork()
    if scraper == 0:
        os.close(read)
        seen: list[float] = []
        decreases, errors = 0, []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                total = counter_total(scrape())
            except Exception as exc:
                errors.append(repr(exc))
                continue
            if seen and total < seen[-1]:
                decreases += 1
            seen.append(total)
            if total >= children:
                break
        os.write(
            write,
            json.dumps(
                {
                    "scrapes": len(seen),
                    "decreases": decreases,
                    "errors": errors[:5],
                    "last": seen[-1:],
                }
            ).encode(),
        )
        os._exit(0)
    os.close(write)

    def work(_: int) -> None:
        TEST_COUNTER.labels("a").inc()

    for index in range(children):
        pid = run_child(work, index)
        mp.mark_process_dead(pid, DIR)
    report = b""
    while chunk := os.read(read, 65536):
        report += chunk
    os.waitpid(scraper, 0)
    result: dict[str, Any] = json.loads(report)
    return result


def scenario_catalogue() -> dict[str, Any]:
    """Record every process-side metric once; render with a StateCollector."""

    def record(live: bool) -> None:
        for spec in metrics.CATALOGUE.values():
            metric = spec.metric
            if metric is None or spec.multiprocess_mode.startswith("live") != live:
                continue
            child = metric.labels(*["x"] * len(spec.labels)) if spec.labels else metric
            if spec.kind == "counter":
                child.inc()  # type: ignore[union-attr]
            elif spec.kind == "histogram":
                child.observe(1.0)  # type: ignore[union-attr]
            else:
                child.set(1)  # type: ignore[union-attr]

    run_child(lambda _: record(live=False), 0)  # a dead child's counters are kept...
    record(live=True)  # ...its live gauges are not: those come from a live process
    snapshot = StateSnapshot(
        approvals_pending=1,
        executions_active={"x": 1},
        executions_waiting={"x": 1},
        queue_lengths={"x": 1},
    )
    body, _ = render_metrics([StateCollector(lambda: snapshot)], path=DIR)
    families = {}
    for family in text_string_to_metric_families(body.decode()):
        labels = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = {"type": family.type, "labels": sorted(labels)}
    return families


def scenario_prepare() -> dict[str, Any]:
    """A main process that imported the metrics wipes the directory, then serves."""
    run_child(lambda _: TEST_COUNTER.labels("stale").inc(), 0)  # a previous run's leftovers
    mp.prepare_directory(DIR)
    metrics.HTTP_IN_FLIGHT.inc()  # a labelless live gauge, opened at import
    body, _ = render_metrics(path=DIR)
    found = values(body)
    return {
        "in_flight": found.get(("http_requests_in_flight", ())),
        "cpu": found.get(("process_cpu_seconds_total", ())),
        "stale": found.get(("test_events_total", (("k", "stale"),))),
    }


class _UpstreamMerge:
    """What DirectoryCollector read before aggregation.py: upstream's merge, then sorted."""

    def collect(self) -> list[Metric]:
        order = {"_bucket": 0, "_count": 1, "_sum": 2}

        def key(sample: Any) -> tuple[Any, ...]:
            labels = sorted((k, v) for k, v in sample.labels.items() if k != "le")
            rank = next((r for suffix, r in order.items() if sample.name.endswith(suffix)), 3)
            return (labels, rank, float(sample.labels.get("le", "0")), sample.name)

        paths = [os.path.join(DIR, name) for name in files()]
        merged = _upstream.MultiProcessCollector.merge(paths, accumulate=True)
        result = []
        for metric in sorted(merged, key=lambda m: m.name):
            tidy = Metric(metric.name, metric.documentation, metric.type)
            tidy.samples = sorted(metric.samples, key=key)
            result.append(tidy)
        return result


def scenario_aggregation(children: int) -> dict[str, Any]:
    """Several dead and one live process, every gauge mode, float sums: ours vs upstream's."""
    for index in range(children):
        run_child(lambda i: record_everything(i, dyadic=False), index)
    record_everything(children, dyadic=False)
    ours = generate_latest(mp.DirectoryCollector(DIR))
    theirs = generate_latest(_UpstreamMerge())
    text = render_text(mp.DirectoryCollector(DIR).collect())
    return {
        "identical": ours == theirs,
        "text_identical": text == ours,
        "lines": ours.count(b"\n"),
        "ours": ours.decode(),
    }


def scenario_aggregation_rounds() -> dict[str, Any]:
    """One serving process scraping as the directory changes, each time ours vs upstream's.

    The rounds walk through what the cached layouts and plan (aggregation.py) must
    notice: values changed in place, a new label set appended to a live file, a
    new process's files, dead processes archived (files gone, archives rewritten).
    """
    from monitoring import aggregation

    rounds: list[dict[str, Any]] = []

    def compare(what: str) -> None:
        plan = aggregation._plans[0] if aggregation._plans else None
        ours = generate_latest(mp.DirectoryCollector(DIR))
        reused = plan is not None and aggregation._plans[0] is plan
        theirs = generate_latest(_UpstreamMerge())
        text = render_text(mp.DirectoryCollector(DIR).collect())
        rounds.append(
            {
                "what": what,
                "identical": ours == theirs,
                "text_identical": text == ours,
                "plan_reused": reused,
                "lines": ours.count(b"\n"),
                "diff": "" if ours == theirs else f"{ours.decode()}\n---\n{theirs.decode()}",
            }
        )

    dead = [run_child(lambda i: record_everything(i, dyadic=False), i) for i in range(3)]
    record_everything(10, dyadic=False)
    compare("dead and live processes")
    compare("nothing changed")
    record_everything(11, dyadic=False)  # same label sets, new values (every gauge mode)
    compare("values changed in place")
    TEST_COUNTER.labels("new").inc(2.5)
    TEST_HISTOGRAM.labels("new").observe(0.7)
    MODE_GAUGES["mostrecent"].labels("new").set(4)
    compare("a live process appended label sets")
    for pid in dead:
        upstream.mark_process_dead(pid, DIR)
    mp.archive_dead_processes(DIR)
    compare("dead processes archived")
    run_child(lambda i: record_everything(i, dyadic=False), 20)
    compare("a new process's files")
    mp.archive_dead_processes(DIR)  # archives rewritten in place, with new values
    record_everything(21, dyadic=False)
    compare("archive rewritten, live values changed")
    return {"rounds": rounds}


def scenario_known() -> dict[str, Any]:
    """A dead child recorded one execution; the scrape adds zeros for the rest."""
    run_child(lambda _: metrics.record_execution_finished("invoice", "completed", "event", 2.0), 0)
    known = KnownSeries(
        lambda: KnownLabels(
            workflows=[KnownWorkflow("invoice", "event"), KnownWorkflow("welcome", "schedule")]
        )
    )
    body, _ = render_metrics(path=DIR, known=known)
    return {repr(key): value for key, value in values(body).items()}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "known": scenario_known,
    "aggregation": lambda: scenario_aggregation(6),
    "aggregation_rounds": scenario_aggregation_rounds,
    "prepare": scenario_prepare,
    "identity": lambda: scenario_identity(12, dyadic=True),
    "identity_floats": lambda: scenario_identity(12, dyadic=False),
    "recycle": lambda: scenario_recycle(100),
    "sweep": lambda: scenario_sweep(5),
    "race": lambda: scenario_race(60),
    "catalogue": scenario_catalogue,
}

if __name__ == "__main__":
    json.dump(SCENARIOS[sys.argv[1]](), sys.stdout)
