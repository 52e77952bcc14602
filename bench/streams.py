"""Idle live streams held by one stream host, and how fast a committed change reaches them.

    BENCH_REDIS_URL=redis://127.0.0.1:PORT/4 .venv/bin/python bench/streams.py
        [--streams 500] [--changes 200] [--interval 0.02] [--workers 2] [--threads 300]

Starts the stream service as `make up` does (gunicorn -c gunicorn_streams.conf.py,
gthread workers) on a throwaway database, registers one user, inserts
--streams running executions and opens one `GET /executions/{id}/events`
stream on each (asyncio + httpx, one client process). Then:

- memory: the proportional set size (PSS, /proc/PID/smaps_rollup) of the
  gunicorn master and workers with one stream open and with all of them open;
  per stream = the difference / (streams - 1). Also the threads of the workers.
- latency: --changes times, one execution's version is bumped in its own
  transaction (what a step's commit does to the row); the time from just before
  COMMIT is sent to the moment its stream's client has parsed the event, p50 /
  p90 / p99 / max. The path: trigger -> NOTIFY on commit -> the worker's LISTEN
  thread -> the stream re-reads the row and its steps -> SSE frame -> client.

The per-principal stream limit and the request rate limit are lifted for the
one user (STREAM_MAX_PER_PRINCIPAL, RATE_LIMIT_ENABLED=false).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from harness import ROOT, free_port, throwaway_database

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")


def start_stream_host(database_url: str, port: int, args: argparse.Namespace) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_MULTIPROC")}
    env.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "JWT_SECRET": "bench-streams-secret-0123456789abcdef",
            "STREAM_PORT": str(port),
            "STREAM_WORKERS": str(args.workers),
            "STREAM_THREADS": str(args.threads),
            "STREAM_MAX_PER_PRINCIPAL": str(args.streams + 10),
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn_streams.conf.py"),
            "api.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )


def wait_ready(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the stream host did not become ready")


def register(base: str) -> tuple[dict[str, str], str]:
    name = f"bench{uuid.uuid4().hex[:8]}"
    body = {"username": name, "email": f"{name}@example.com", "password": "correct-horse-9"}
    httpx.post(f"{base}/api/v1/auth/register", json=body, timeout=10).raise_for_status()
    login = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": name, "password": body["password"]},
        timeout=10,
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = httpx.get(f"{base}/api/v1/auth/me", headers=headers, timeout=10).json()
    return headers, str(me["organization_id"])


def insert_executions(connection: Any, organization_id: str, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO executions (id, organization_id, workflow_id, workflow_version,"
            " definition, status, trigger_type, trigger_payload, context)"
            " VALUES (%s, %s, 'bench', '1', '{}', 'running', 'manual', '{}', '{}')",
            [(execution_id, organization_id) for execution_id in ids],
        )
    connection.commit()
    return ids


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def gunicorn_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *(int(pid) for pid in children)]


def threads_of(pids: list[int]) -> int:
    return sum(len(list(Path(f"/proc/{pid}/task").iterdir())) for pid in pids)


class Streams:
    """The client side: one task per stream, recording when each event is parsed."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base
        self.headers = headers
        self.opened = 0
        self.received: dict[tuple[str, int], float] = {}
        self.errors: list[str] = []
        self._open_event = asyncio.Event()

    async def follow(self, client: httpx.AsyncClient, execution_id: str) -> None:
        url = f"{self.base}/api/v1/executions/{execution_id}/events"
        try:
            async with client.stream("GET", url, headers=self.headers) as response:
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code} {await response.aread()!r}")
                    return
                self.opened += 1
                kind = None
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "execution":
                        data = json.loads(line[6:])
                        self.received[(execution_id, int(data["version"]))] = time.perf_counter()
        except httpx.HTTPError as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def measure(args: argparse.Namespace, base: str, master: int, dsn: str) -> None:
    import psycopg2

    headers, organization_id = register(base)
    connection = psycopg2.connect(dsn)
    ids = insert_executions(connection, organization_id, args.streams)
    streams = Streams(base, headers)
    limits = httpx.Limits(max_connections=args.streams + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(streams.follow(client, ids[0]))]
        await wait_for(lambda: (ids[0], 1) in streams.received, 30, "the first stream")
        await asyncio.sleep(1.0)
        pids = gunicorn_pids(master)
        one = pss_kib(pids)
        started = time.perf_counter()
        for execution_id in ids[1:]:
            tasks.append(asyncio.create_task(streams.follow(client, execution_id)))
        await wait_for(
            lambda: len(streams.received) >= args.streams or streams.errors,
            120,
            "every stream's first event",
        )
        if streams.errors:
            raise SystemExit(f"{len(streams.errors)} streams failed: {streams.errors[:3]}")
        opened_in = time.perf_counter() - started
        await asyncio.sleep(2.0)  # idle
        pids = gunicorn_pids(master)
        everything = pss_kib(pids)
        print(f"streams open: {streams.opened} (opened in {opened_in:.1f}s)")
        print(
            f"stream host PSS: {one / 1024:.1f} MiB with 1 stream, "
            f"{everything / 1024:.1f} MiB with {args.streams}; "
            f"per stream {(everything - one) / (args.streams - 1):.1f} KiB "
            f"({len(pids) - 1} workers, {threads_of(pids)} threads)"
        )
        latencies = await bump_versions(args, connection, ids, streams)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    connection.close()
    report(latencies, args.changes)


async def bump_versions(
    args: argparse.Namespace, connection: Any, ids: list[str], streams: Streams
) -> list[float]:
    latencies: list[float] = []
    for index in range(args.changes):
        execution_id = ids[index % len(ids)]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE executions SET version = version + 1, current_step_id = %s"
                " WHERE id = %s RETURNING version",
                (f"step{index}", execution_id),
            )
            version = cursor.fetchone()[0]
        committing = time.perf_counter()
        connection.commit()
        key = (execution_id, version)
        await wait_for(lambda key=key: key in streams.received, 10, f"change {index}")
        latencies.append(streams.received[key] - committing)
        await asyncio.sleep(args.interval)
    return latencies


def report(latencies: list[float], changes: int) -> None:
    ms = sorted(value * 1000 for value in latencies)
    quantiles = statistics.quantiles(ms, n=100, method="inclusive")
    print(
        f"commit -> client received, {changes} changes: p50={statistics.median(ms):.1f}ms "
        f"p90={quantiles[89]:.1f}ms p99={quantiles[98]:.1f}ms max={ms[-1]:.1f}ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between changes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=300)
    args = parser.parse_args()
    if args.streams < 2 or args.workers * args.threads < args.streams:
        raise SystemExit("need 2 <= --streams <= --workers x --threads")
    from models.migration import drop_database

    database_url = throwaway_database("iw_streams")
    port = free_port()
    host = start_stream_host(database_url, port, args)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        from sqlalchemy.engine import make_url

        dsn = make_url(database_url).set(drivername="postgresql")
        asyncio.run(measure(args, base, host.pid, dsn.render_as_string(hide_password=False)))
    finally:
        os.killpg(host.pid, signal.SIGTERM)
        host.wait(timeout=30)
        drop_database(database_url)


if __name__ == "__main__":
    main()
