"""Metrics benchmark: /metrics latency under load, metric files across recycles, middleware cost.

    .venv/bin/python bench/scrape.py [--executions 10000] [--workflows 50] [--scrape-only]

On a throwaway database: gunicorn (2 workers) and a Celery worker (2 processes);
N executions over W workflows through POST /api/v1/events; then
  1. p50/p95 of GET /metrics on the API and on the worker host, and the CPU the
     serving processes spent per scrape (steadier than latency on shared cores),
  2. the API's metrics directory (files, bytes) before and after 100 gunicorn
     worker recycles (max_requests=10),
  3. requests/s of GET /api/v1/workflows with wrk, with and without the HTTP
     metrics middleware (HTTP_METRICS_ENABLED), and the ratio.
The per-principal rate limit is raised to 1000000/second for the run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.migration import create_database_if_missing, drop_database, upgrade_to_head  # noqa: E402
from tests.e2e.stack import Stack, wait_until  # noqa: E402
from tests.support import redis_db_url  # noqa: E402

SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432/iw_bench_scrape_"
# On the tests' Redis server (TEST_REDIS_SERVER): a run beside another one uses its own.
REDIS_APP = redis_db_url(8)
REDIS_BROKER = redis_db_url(7)
ENV = {"RATE_LIMIT_DEFAULT": "1000000/second", "LOG_LEVEL": "WARNING"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def login(base: str) -> str:
    user = {"username": "bench", "email": "bench@example.com", "password": "a-long-password"}
    httpx.post(f"{base}/auth/register", json=user, timeout=10)
    body = {"username": "bench", "password": "a-long-password"}
    return str(httpx.post(f"{base}/auth/login", json=body, timeout=10).json()["access_token"])


def create_workflows(base: str, token: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for index in range(count):
        body = {
            "workflow_id": f"bench_{index}",
            "version": "1",
            "name": f"bench {index}",
            "enabled": True,
            "definition": {
                "trigger": {"type": "event", "event": f"bench.{index}"},
                "steps": [
                    {
                        "id": "check",
                        "type": "condition",
                        "condition": {"field": "n", "operator": "gt", "value": 0},
                        "on_true": "ok",
                        "on_false": "no",
                    },
                    {"id": "ok", "type": "action", "action": {"type": "allow"}},
                    {"id": "no", "type": "action", "action": {"type": "block"}},
                ],
            },
        }
        response = httpx.post(f"{base}/workflows", json=body, headers=headers, timeout=10)
        response.raise_for_status()


def send_events(base: str, token: str, executions: int, workflows: int) -> float:
    headers = {"Authorization": f"Bearer {token}"}

    def send(chunk: range) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for index in chunk:
                body = {"event_type": f"bench.{index % workflows}", "payload": {"n": index % 3}}
                client.post("/events", json=body).raise_for_status()

    started = time.perf_counter()
    chunks = [range(i, executions, 8) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - started


def scrape_latency(url: str, samples: int = 200) -> tuple[float, float, int, float]:
    """p50 and p95 in ms, body size, and the server's CPU ms per scrape."""
    timings = []
    size = 0
    servers = listening_pids(httpx.URL(url).port or 80)
    cpu_before = sum(cpu_seconds(pid) for pid in servers)
    with httpx.Client(timeout=10) as client:
        for _ in range(samples):
            started = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - started)
            size = len(response.content)
    cpu_ms = (sum(cpu_seconds(pid) for pid in servers) - cpu_before) / samples * 1000
    return percentile(timings, 0.5) * 1000, percentile(timings, 0.95) * 1000, size, cpu_ms


def listening_pids(port: int) -> list[int]:
    """Processes holding the socket listening on ``port`` (the ones that answer scrapes)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                pids.append(int(fd_dir.parent.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def directory_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.iterdir() if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def wrk(url: str, token: str, seconds: int = 10) -> float:
    result = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(result.stdout)


def start(stack: Stack, worker: bool) -> None:
    stack.start_api()
    if worker:
        stack.start_worker()
    stack.wait_ready()
    if worker:
        stack.wait_worker()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--workflows", type=int, default=50)
    parser.add_argument(
        "--scrape-only", action="store_true", help="stop after the /metrics latencies (1.)"
    )
    args = parser.parse_args()
    database_url = SERVER + secrets.token_hex(3)
    create_database_if_missing(database_url)
    upgrade_to_head(database_url)
    for url in (REDIS_APP, REDIS_BROKER):
        redis.Redis.from_url(url).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="iw-bench-scrape-"))
    print("rate limit raised to 1000000/second for this benchmark")
    stack = Stack(
        database_url=database_url,
        redis_url=REDIS_APP,
        broker_url=REDIS_BROKER,
        workdir=workdir,
        extra_env=dict(ENV),
    )
    stacks = [stack]  # every stack of the run, stopped at the end whatever happens
    db = create_engine(database_url)
    try:
        start(stack, worker=True)
        base = stack.api_url + "/api/v1"
        token = login(base)
        create_workflows(base, token, args.workflows)
        elapsed = send_events(base, token, args.executions, args.workflows)
        print(f"sent {args.executions} events over {args.workflows} workflows in {elapsed:.1f}s")

        def finished() -> bool:
            with db.connect() as connection:
                done = connection.execute(
                    text("SELECT count(*) FROM executions WHERE status = 'completed'")
                ).scalar_one()
            return bool(done >= args.executions)

        wait_until(finished, 900, interval=2, what="executions to finish")
        for name, url in (
            ("api", f"{stack.api_url}/metrics"),
            ("worker", f"http://127.0.0.1:{stack.worker_metrics_port}/metrics"),
        ):
            p50, p95, size, cpu = scrape_latency(url)
            print(
                f"/metrics {name}: p50={p50:.1f}ms p95={p95:.1f}ms body={size} bytes"
                f" server CPU {cpu:.1f}ms per scrape"
            )
        stack.stop()
        if args.scrape_only:
            return

        # 100 gunicorn recycles: max_requests=10 per worker, 1000 requests.
        recycled = Stack(
            database_url=database_url,
            redis_url=REDIS_APP,
            broker_url=REDIS_BROKER,
            workdir=workdir / "recycle",
            extra_env={**ENV, "GUNICORN_MAX_REQUESTS": "10", "GUNICORN_MAX_REQUESTS_JITTER": "0"},
        )
        stacks.append(recycled)
        (workdir / "recycle").mkdir()
        start(recycled, worker=False)
        metrics_dir = workdir / "recycle" / "metrics-api"
        before = directory_size(metrics_dir)
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(1000):
                client.get(f"{recycled.api_url}/api/v1/workflows", params={"page_size": 1})
        after = directory_size(metrics_dir)
        p50, p95, _, _ = scrape_latency(f"{recycled.api_url}/metrics", 50)
        print(f"metric files before recycles: {before[0]} files, {before[1]} bytes")
        print(
            f"metric files after 100 recycles: {after[0]} files, {after[1]} bytes; "
            f"/metrics p50={p50:.1f}ms p95={p95:.1f}ms"
        )
        recycled.stop()

        if shutil.which("wrk") is None:
            print("wrk not installed: middleware overhead not measured")
            return
        rates: dict[bool, float] = {}
        for enabled in (True, False):
            directory = workdir / f"wrk-{enabled}"
            directory.mkdir()
            env = {
                **ENV,
                "HTTP_METRICS_ENABLED": "true" if enabled else "false",
                "GUNICORN_MAX_REQUESTS": "0",
            }
            measured = Stack(
                database_url=database_url,
                redis_url=REDIS_APP,
                broker_url=REDIS_BROKER,
                workdir=directory,
                extra_env=env,
            )
            stacks.append(measured)
            start(measured, worker=False)
            rates[enabled] = wrk(f"{measured.api_url}/api/v1/workflows?page_size=5", token)
            measured.stop()
        ratio = rates[True] / rates[False]
        print(
            f"GET /api/v1/workflows with metrics {rates[True]:.0f} req/s, without "
            f"{rates[False]:.0f} req/s: ratio {ratio:.3f} (overhead {(1 - ratio) * 100:.1f}%)"
        )
    finally:
        for each in stacks:
            each.stop()
        db.dispose()
        drop_database(database_url)


if __name__ == "__main__":
    main()
