"""Multiprocess directory size and scrape time before and after archiving dead processes.

    .venv/bin/python bench/scrape_files.py [N ...]      (default: 16 64 256)

For each N, a fresh interpreter (prometheus_client picks multiprocess mode at
import) forks N short-lived children that each record 100 HTTP route label sets
(4 metrics per request: a counter and three histograms) and exit, as recycled
gunicorn workers would. It then times a scrape of the directory, archives the
dead processes (monitoring.multiprocess) and times a scrape again, checking
that the output is identical.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

ROUTES = 100
REPEATS = 3


def measure(children: int) -> None:
    from prometheus_client import multiprocess
    from prometheus_client.exposition import generate_latest

    from monitoring import metrics
    from monitoring import multiprocess as mp

    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for index in range(children):
        pid = os.fork()
        if pid == 0:
            for route in range(ROUTES):
                metrics.record_http_request("GET", f"/r/{route}", 200, 0.01 * (index % 7), 10, 100)
            os._exit(0)
        os.waitpid(pid, 0)
        mark_dead: Any = multiprocess.mark_process_dead
        mark_dead(pid, path)  # live gauges only: upstream behaviour

    def snapshot() -> tuple[int, int, float, bytes]:
        names = [n for n in os.listdir(path) if n.endswith(".db")]
        size = sum(os.path.getsize(os.path.join(path, n)) for n in names)
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            body = generate_latest(mp.DirectoryCollector(path))
            best = min(best, time.perf_counter() - start)
        return len(names), size, best, body

    files_before, bytes_before, scrape_before, body_before = snapshot()
    start = time.perf_counter()
    mp.archive_dead_processes(path)
    archive_s = time.perf_counter() - start
    files_after, bytes_after, scrape_after, body_after = snapshot()
    print(
        f"{children:>5} dead | files {files_before:>5} -> {files_after:<3} | "
        f"bytes {bytes_before:>11,} -> {bytes_after:<9,} | "
        f"scrape {scrape_before:7.3f} s -> {scrape_after:.3f} s | "
        f"archive {archive_s:.3f} s | identical {body_before == body_after}"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        measure(int(sys.argv[2]))
        return
    counts = [int(a) for a in sys.argv[1:]] or [16, 64, 256]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for children in counts:
        with tempfile.TemporaryDirectory() as path:
            env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": path, "PYTHONPATH": root}
            subprocess.run(
                [sys.executable, __file__, "--child", str(children)], env=env, check=True
            )


if __name__ == "__main__":
    main()
