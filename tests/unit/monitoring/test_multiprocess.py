"""Archiving dead processes: identical scrapes, monotonic counters, bounded files.

Scenarios run in a fresh interpreter with real forked children (see mp_driver).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitoring import multiprocess

Scenario = Callable[[str], Any]


def test_archiving_leaves_the_scrape_byte_identical(run_scenario: Scenario) -> None:
    result = run_scenario("identity")
    assert result["archived"] == 12
    assert result["identical_without_all_mode"]


def test_archiving_replaces_dead_files_with_one_archive_per_kind(run_scenario: Scenario) -> None:
    result = run_scenario("identity")
    archives = [name for name in result["files_after"] if "archive" in name]
    assert sorted(archives) == [
        "counter_archive.db",
        "gauge_max_archive.db",
        "gauge_min_archive.db",
        "gauge_mostrecent_archive.db",
        "gauge_sum_archive.db",
        "histogram_archive.db",
    ]
    assert result["files_before"] > len(result["files_after"])


def test_gauges_of_dead_processes_merge_with_their_mode(run_scenario: Scenario) -> None:
    after = run_scenario("identity")["after"]

    def gauge(mode: str) -> float | None:
        value: float | None = after.get(repr((f"test_gauge_{mode}", (("k", "a"),))))
        return value

    # Child i set i*10 + 1 (+0.5 for min) for label k=a; children 0..11, in order.
    assert gauge("max") == 111
    assert gauge("min") == 1.5
    assert gauge("sum") == sum(i * 10 + 1 for i in range(12))
    assert gauge("mostrecent") == 111
    assert gauge("livesum") is None
    assert gauge("livemax") is None


def test_per_pid_gauges_of_dead_processes_are_dropped(run_scenario: Scenario) -> None:
    result = run_scenario("identity")
    assert result["all_mode_pid_series_before"] == 36
    assert result["all_mode_pid_series_after"] == 0


def test_float_sums_survive_archiving_to_the_last_bits(run_scenario: Scenario) -> None:
    result = run_scenario("identity_floats")
    before, after = result["before"], result["after"]
    kept = {k: v for k, v in before.items() if "test_gauge_all" not in k}
    assert kept.keys() == after.keys()
    for key, value in kept.items():
        assert math.isclose(after[key], value, rel_tol=1e-12), key


def test_the_sorted_collector_agrees_with_upstream(run_scenario: Scenario) -> None:
    result = run_scenario("identity_floats")
    assert result["before"].keys() == result["upstream_before"].keys()
    for key, value in result["upstream_before"].items():
        assert math.isclose(result["before"][key], value, rel_tol=1e-12), key


def test_a_hundred_recycled_processes_keep_counters_exact_and_files_bounded(
    run_scenario: Scenario,
) -> None:
    result = run_scenario("recycle")
    assert result["totals"] == [float(n) for n in range(1, 101)]
    assert max(result["file_counts"]) <= 8  # the parent's 4 kinds + 3 archives (+ slack)
    assert all(".db" in name for name in result["files"])


def test_processes_killed_without_marking_are_swept_at_scrape_time(
    run_scenario: Scenario,
) -> None:
    result = run_scenario("sweep")
    assert result["livesum_before"] == 5  # dead processes' in-flight gauges, before the sweep
    assert result["livesum_after"] is None
    assert result["counter_after"] == 5
    assert result["files_after"] < result["files_before"]
    assert result["content_type"].startswith("text/plain; version=0.0.4")


def test_concurrent_scrapes_never_see_a_counter_go_backwards(run_scenario: Scenario) -> None:
    result = run_scenario("race")
    assert result["errors"] == []
    assert result["decreases"] == 0
    assert result["scrapes"] > 1
    assert result["last"] == [60.0]


def test_prepare_directory_removes_metric_files_only(tmp_path: Path) -> None:
    for name in ("counter_12.db", "gauge_livesum_12.db", "histogram_archive.db", ".x.db.tmp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("keep me")
    own = f"counter_{os.getpid()}.db"  # this process may be writing it already
    (tmp_path / own).write_bytes(b"")
    multiprocess.prepare_directory(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([own, "notes.txt"])


def test_a_main_process_that_imported_the_metrics_can_wipe_then_serve(
    run_scenario: Scenario,
) -> None:
    result = run_scenario("prepare")
    assert result["stale"] is None
    assert result["in_flight"] == 1
    assert result["cpu"] > 0


def test_prepare_directory_creates_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    multiprocess.prepare_directory(str(target))
    assert target.is_dir()


def test_archiving_without_a_directory_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert multiprocess.mark_process_dead(12345) == 0
    assert multiprocess.archive_dead_processes() == []


def test_a_live_process_is_not_swept(tmp_path: Path) -> None:
    (tmp_path / f"counter_{os.getpid()}.db").write_bytes(b"")
    assert multiprocess.archive_dead_processes(str(tmp_path)) == []
    assert (tmp_path / f"counter_{os.getpid()}.db").exists()


def test_retiring_a_process_archives_its_files(tmp_path: Path) -> None:
    dead = 999_999_999  # above any pid_max: never alive
    (tmp_path / f"gauge_livesum_{dead}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead}.db").write_bytes(b"")
    assert multiprocess.retire_process(dead, str(tmp_path)) == 2
    assert sorted(os.listdir(tmp_path)) == [".archive.lock", "counter_archive.db"]
