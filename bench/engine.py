"""Engine benchmark: 300 executions of a 5-step no-op workflow, end to end, against the
Celery-chain floor measured in the same run (shared/bench/celery_floor.py --pg).

    .venv/bin/python bench/engine.py [-n 300] [--rounds 3] [--skip-floor] [--skip-ingest]
        [--skip-engine] [--skip-batch]

Starts, on a throwaway database and dedicated Redis DBs: gunicorn (2 workers,
flags on the command line, no gunicorn.conf.py) and a Celery worker (prefork,
2 processes) plus beat; sends N events through POST /api/v1/events from 8
client threads; waits until every execution finished; prints executions/s,
steps/s and the p50/p95/p99 of event accepted -> execution finished. Then it
stops the stack, runs the floor (its own worker, `run -e N -s 5 --pg`) and
prints the ratio. The same N events are also sent in batches of 100 through
POST /api/v1/events/batch on a fresh stack (end to end with batched events,
against the same floor). With `wrk` installed it also compares POST
/api/v1/events throughput with shared/bench/ingest_floor.py under the same
gunicorn flags, and, in the same round, the events/s of POST /events/batch
(batches of 100 from 4 threads of this script's own client) with the floor's.

On a shared machine the speed of both sides drifts between runs: with
--rounds N each comparison is repeated N times, the platform and its floor
taking turns, and the median ratio is printed after the rounds' own.

The per-principal rate limit (default 100/s) is raised to 1000000/second for
the run through RATE_LIMIT_DEFAULT; the output says so.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
from harness import ROOT, SHARED_BENCH, free_port, worker_flags
from harness import throwaway_database as new_database
from sqlalchemy import create_engine, text

BIN = Path(sys.executable).parent
FLOOR_SCRIPT = SHARED_BENCH / "celery_floor.py"
# DBs 10 and 11 are flushed around each round: on a machine shared with other runs,
# point BENCH_REDIS_SERVER (and the floors' FLOOR_BROKER) at a redis-server of your own.
REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")
REDIS_APP = f"{REDIS_SERVER}/10"
REDIS_BROKER = f"{REDIS_SERVER}/11"
RATE_LIMIT = "1000000/second"
STEPS = 5
CLIENT_THREADS = 8
# Events a request of the batched runs (POST /events/batch), and the threads sending them.
BATCH_SIZE = 100
BATCH_THREADS = 4
BATCH_SECONDS = 10.0


def workflow(event: str) -> dict[str, Any]:
    """The benches' workflow: STEPS no-op steps."""
    return noop_chain("bench_noop", event, STEPS)


def noop_chain(workflow_id: str, event: str, steps: int) -> dict[str, Any]:
    """A workflow of `steps` sequential no-op steps (sets, then an allow) on `event`."""
    body: list[dict[str, Any]] = [
        {
            "id": f"s{i}",
            "type": "execute",
            "execute": [{"type": "set", "values": {f"v{i}": i}}],
            "next": f"s{i + 1}",
        }
        for i in range(1, steps)
    ]
    body.append({"id": f"s{steps}", "type": "action", "action": {"type": "allow"}})
    return {
        "workflow_id": workflow_id,
        "version": "1",
        "name": f"{steps} no-op steps",
        "enabled": True,
        "definition": {"trigger": {"type": "event", "event": event}, "steps": body},
    }


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, name: str) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def stack_env(database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_MULTIPROC")}
    env.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_APP,
            "CELERY_BROKER_URL": REDIS_BROKER,
            "JWT_SECRET": "bench-secret-" + secrets.token_hex(16),
            "RATE_LIMIT_DEFAULT": RATE_LIMIT,
            "RATE_LIMIT_AUTH": "100000/minute",
            "LOG_LEVEL": "WARNING",
            "API_PORT": str(port),
            "WORKER_METRICS_PORT": str(free_port()),
            "WORKER_CONCURRENCY": "2",
        }
    )
    return env


def gunicorn_command(port: int, app: str) -> list[str]:
    # Flags only: the same settings for the platform and for the ingest floor.
    return [
        str(BIN / "gunicorn"),
        "-c",
        "/dev/null",
        "-w",
        "2",
        "-k",
        "sync",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app,
    ]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready")


def register(base: str) -> str:
    name = "bench" + secrets.token_hex(4)
    body = {"username": name, "email": f"{name}@example.com", "password": "correct-horse-9"}
    httpx.post(f"{base}/auth/register", json=body, timeout=10).raise_for_status()
    login = httpx.post(
        f"{base}/auth/login", json={"username": name, "password": body["password"]}, timeout=10
    )
    login.raise_for_status()
    return str(login.json()["access_token"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def worker_command() -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "workers.app",
        *worker_flags(2),
        # e.g. BENCH_WORKER_ARGS="--prefetch-multiplier 4" to compare settings
        *os.environ.get("BENCH_WORKER_ARGS", "").split(),
    ]


def wait_finished(db: Any, n: int, started: float) -> None:
    while True:
        with db.connect() as connection:
            done = connection.execute(
                text(
                    "SELECT count(*) FROM executions"
                    " WHERE status IN ('completed', 'failed', 'cancelled')"
                )
            ).scalar_one()
        if done >= n:
            return
        if time.perf_counter() - started > 600:
            raise SystemExit(f"only {done}/{n} executions finished in 600 s")
        time.sleep(0.05)


class EventSender:
    """POST /events from the client threads, one keep-alive connection per thread.

    The load generator shares the two cores with the API and the worker, so its
    CPU is taken from what it measures: httpx spent about 0.95 ms of CPU per
    request here, the standard library's http.client about 0.5 ms (1,000 posts
    from 8 threads to ingest_floor.py), so the events go out through the latter.
    """

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self._port = port
        self._headers = {**headers, "Content-Type": "application/json"}
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []

    def send(self, body: dict[str, Any]) -> str:
        """The first execution id of the answer (the workflow starts one)."""
        data = self._post("/api/v1/events", body, 202)
        return str(json.loads(data)["execution_ids"][0])

    def send_batch(self, bodies: list[dict[str, Any]]) -> list[str]:
        """POST /events/batch; the first execution id of each event (all must be accepted)."""
        data = self._post("/api/v1/events/batch", {"events": bodies}, 207)
        answer = json.loads(data)
        if answer["rejected"]:
            rejected = [r for r in answer["results"] if r["status"] != 202]
            raise SystemExit(f"POST /events/batch rejected {answer['rejected']}: {rejected[:3]}")
        return [str(result["event"]["execution_ids"][0]) for result in answer["results"]]

    def _post(self, path: str, body: dict[str, Any], expected: int) -> bytes:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
            self._local.connection = connection
            self._connections.append(connection)
        connection.request("POST", path, json.dumps(body), self._headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != expected:
            raise SystemExit(f"POST {path} answered {response.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        for connection in self._connections:
            connection.close()


def start_stack(
    processes: Processes, database_url: str, event: str
) -> tuple[int, dict[str, str], dict[str, str]]:
    """API, worker and beat on this database, a user, the no-op workflow of `event`:
    (port, environment, auth headers)."""
    port = free_port()
    env = stack_env(database_url, port)
    processes.spawn("api", gunicorn_command(port, "api.wsgi:app"), env)
    processes.spawn("worker", worker_command(), env)
    processes.spawn(
        "beat",
        [
            str(BIN / "celery"),
            "-A",
            "workers.app",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(processes.workdir / "beat-schedule"),
        ],
        env,
    )
    wait_http(f"http://127.0.0.1:{port}/ready")
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {register(base)}"}
    httpx.post(
        f"{base}/workflows", json=workflow(event), headers=headers, timeout=10
    ).raise_for_status()
    time.sleep(2)  # let the worker finish booting its pool
    return port, env, headers


def run_engine(
    n: int, processes: Processes, database_url: str
) -> tuple[dict[str, float], dict[str, float]]:
    event = "bench.noop"
    port, env, headers = start_stack(processes, database_url, event)
    sender = EventSender(port, headers)

    def send(i: int) -> str:
        return sender.send({"event_type": event, "payload": {"i": i}})

    db = create_engine(database_url)
    # Phase 1, end to end: events through the API while the worker runs them.
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        ids = list(pool.map(send, range(n)))
    accepted_s = time.perf_counter() - started
    wait_finished(db, n, started)
    end_to_end = _summary(db, ids, n, accepted_s)
    # Phase 2, the engine alone: the same load queued first (worker stopped), then
    # drained; measured from the first step started to the last execution finished.
    processes.stop("worker")
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        queued = list(pool.map(send, range(n)))
    processes.spawn("worker", worker_command(), env)
    wait_finished(db, 2 * n, time.perf_counter())
    with db.connect() as connection:
        drain_span = connection.execute(
            text(
                "SELECT extract(epoch FROM max(e.completed_at) - min(s.started_at)) "
                "FROM executions e JOIN step_runs s ON s.execution_id = e.id"
                " WHERE e.id::text = ANY(:ids)"
            ),
            {"ids": queued},
        ).scalar_one()
    db.dispose()
    sender.close()
    for name in ("beat", "worker", "api"):
        processes.stop(name)
    drain = {"span_s": float(drain_span), "steps_per_s": n * STEPS / float(drain_span)}
    return end_to_end, drain


def run_engine_batched(n: int, processes: Processes, database_url: str) -> dict[str, float]:
    """End to end as run_engine's phase 1, the events sent BATCH_SIZE a request
    (POST /events/batch) from up to CLIENT_THREADS threads."""
    event = "bench.noop"
    port, _env, headers = start_stack(processes, database_url, event)
    sender = EventSender(port, headers)
    batches = [
        [
            {"event_type": event, "payload": {"i": i}}
            for i in range(start, min(n, start + BATCH_SIZE))
        ]
        for start in range(0, n, BATCH_SIZE)
    ]
    db = create_engine(database_url)
    started = time.perf_counter()
    with ThreadPoolExecutor(min(CLIENT_THREADS, len(batches))) as pool:
        ids = [
            execution_id
            for answer in pool.map(sender.send_batch, batches)
            for execution_id in answer
        ]
    accepted_s = time.perf_counter() - started
    wait_finished(db, n, started)
    result = _summary(db, ids, n, accepted_s)
    db.dispose()
    sender.close()
    for name in ("beat", "worker", "api"):
        processes.stop(name)
    return result


def _summary(db: Any, ids: list[str], n: int, accepted_s: float) -> dict[str, float]:
    with db.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT status, extract(epoch FROM completed_at - started_at) FROM executions "
                "WHERE id::text = ANY(:ids)"
            ),
            {"ids": ids},
        ).all()
        span = connection.execute(
            text(
                "SELECT extract(epoch FROM max(completed_at) - min(started_at)) FROM executions "
                "WHERE id::text = ANY(:ids)"
            ),
            {"ids": ids},
        ).scalar_one()
    failed = [r for r in rows if r[0] != "completed"]
    latencies = [float(r[1]) for r in rows]
    return {
        "executions": n,
        "failed": len(failed),
        "accept_s": accepted_s,
        "span_s": float(span),
        "exec_per_s": n / float(span),
        "steps_per_s": n * STEPS / float(span),
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
    }


def run_floor(n: int, processes: Processes) -> float | None:
    env = start_floor_worker(processes)
    if env is None:
        return None
    out = floor_run(processes, env, executions=n, steps=STEPS)
    processes.stop("floor-worker")
    print("floor:", out.strip())
    match = re.search(r"steps_per_s=([\d.]+)", out)
    return float(match.group(1)) if match else None


def start_floor_worker(processes: Processes) -> dict[str, str] | None:
    """The floor's own worker (shared/bench/celery_floor.py), on a flushed broker DB;
    its environment for floor_run, or None without the script."""
    if not FLOOR_SCRIPT.exists():
        print(f"floor: {FLOOR_SCRIPT} not found, skipped")
        return None
    env = {**os.environ, "FLOOR_PG": "dbname=postgres user=postgres host=127.0.0.1"}
    redis.Redis.from_url(env.get("FLOOR_BROKER", "redis://127.0.0.1:6379/15")).flushdb()
    processes.spawn(
        "floor-worker", [sys.executable, str(FLOOR_SCRIPT), "worker"], env, cwd=processes.workdir
    )
    time.sleep(4)
    return env


def floor_run(processes: Processes, env: dict[str, str], *, executions: int, steps: int) -> str:
    """`celery_floor.py run -e EXECUTIONS -s STEPS --pg`: what it prints."""
    return subprocess.run(
        [sys.executable, str(FLOOR_SCRIPT), "run", "-e", str(executions), "-s", str(steps), "--pg"],
        env=env,
        cwd=processes.workdir,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout


def wrk_rps(url: str, token: str) -> float:
    script = SHARED_BENCH / "post_event.lua"
    out = subprocess.run(
        ["wrk", "-t2", "-c16", "-d10s", "-s", str(script), url, "--", token],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        print(f"  warning: {non_2xx.group(1)} non-2xx answers")
    return float(match.group(1)) if match else 0.0


# The event wrk's post_event.lua sends, so a batch carries the same events.
INGEST_EVENT = {
    "event_type": "order.checkout.initiated",
    "source": "bench",
    "payload": {
        "order": {"id": "o-1", "total": 12000},
        "customer": {"tier": "silver", "name": "Ada"},
    },
}


def batch_events_per_s(port: int, token: str) -> tuple[float, float]:
    """(events/s, requests/s) of POST /events/batch, BATCH_SIZE events a request, from
    BATCH_THREADS threads for BATCH_SECONDS; every event must be accepted."""
    sender = EventSender(port, {"Authorization": f"Bearer {token}"})
    batch = [INGEST_EVENT] * BATCH_SIZE
    deadline = time.perf_counter() + BATCH_SECONDS
    lock = threading.Lock()
    sent = [0, 0]  # events, requests

    def loop() -> None:
        while time.perf_counter() < deadline:
            accepted = len(sender.send_batch(batch))
            with lock:
                sent[0] += accepted
                sent[1] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(BATCH_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    sender.close()
    return sent[0] / elapsed, sent[1] / elapsed


def run_ingest(processes: Processes, database_url: str, rounds: int, batch: bool) -> None:
    if shutil.which("wrk") is None:
        print("ingest: wrk not installed (apt-get install -y wrk), skipped")
        return
    port = free_port()
    env = stack_env(database_url, port)
    processes.spawn("api", gunicorn_command(port, "api.wsgi:app"), env)
    wait_http(f"http://127.0.0.1:{port}/ready")
    base = f"http://127.0.0.1:{port}/api/v1"
    token = register(base)
    # A matching workflow, so each event also starts an execution (as in the floor's publish).
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(
        f"{base}/workflows", json=workflow("order.checkout.initiated"), headers=headers, timeout=10
    )
    floor_port = free_port()
    floor_env = {**os.environ, "FLOOR_PG": "dbname=postgres user=postgres host=127.0.0.1"}
    processes.spawn(
        "ingest-floor",
        gunicorn_command(floor_port, "ingest_floor:app"),
        floor_env,
        cwd=SHARED_BENCH,
    )
    time.sleep(2)
    # Both servers stay up (the idle one costs nothing) and take turns, so a noisy
    # neighbour slows both sides of a round rather than one side of the ratio.
    ratios: list[float] = []
    batch_ratios: list[float] = []
    for round_ in range(1, rounds + 1):
        platform = wrk_rps(f"{base}/events", f"Bearer {token}")
        floor = wrk_rps(f"http://127.0.0.1:{floor_port}/e", "unused")
        label = f"ingest round {round_}: " if rounds > 1 else "ingest: "
        print(
            f"{label}POST /api/v1/events {platform:.0f} req/s, floor (ingest_floor.py)"
            f" {floor:.0f} req/s (wrk -t2 -c16 -d10s, gunicorn -w 2 sync)"
        )
        if floor:
            ratios.append(platform / floor)
            print(f"  ingest efficiency: {platform / floor:.2f}")
        if batch:
            events_per_s, requests_per_s = batch_events_per_s(port, token)
            print(
                f"  POST /api/v1/events/batch {events_per_s:.0f} events/s ({requests_per_s:.1f}"
                f" req/s of {BATCH_SIZE} events, {BATCH_THREADS} client threads,"
                f" {BATCH_SECONDS:.0f}s)"
            )
            if floor:
                batch_ratios.append(events_per_s / floor)
                print(f"  batch ingest / floor events/s: {events_per_s / floor:.2f}")
    processes.stop("ingest-floor")
    processes.stop("api")
    if len(ratios) > 1:
        print(f"ingest efficiency, median of {len(ratios)} rounds: {statistics.median(ratios):.2f}")
    if len(batch_ratios) > 1:
        print(
            f"batch ingest / floor, median of {len(batch_ratios)} rounds:"
            f" {statistics.median(batch_ratios):.2f}"
        )


def report(
    result: dict[str, float], drain: dict[str, float], floor: float | None
) -> tuple[float, float] | None:
    """Print one round; returns its (end to end, engine alone) efficiencies."""
    print(
        f"engine end to end: executions={result['executions']:.0f} failed={result['failed']:.0f} "
        f"exec_per_s={result['exec_per_s']:.1f} steps_per_s={result['steps_per_s']:.1f}"
    )
    print(
        f"  first accepted -> last finished {result['span_s']:.2f}s; "
        f"all {result['executions']:.0f} events accepted in {result['accept_s']:.2f}s"
    )
    print(
        "  event accepted -> execution finished: "
        f"p50={result['p50'] * 1000:.0f}ms p95={result['p95'] * 1000:.0f}ms "
        f"p99={result['p99'] * 1000:.0f}ms"
    )
    print(
        f"engine alone (events queued first, then drained): steps_per_s={drain['steps_per_s']:.1f} "
        f"exec_per_s={drain['steps_per_s'] / STEPS:.1f}"
    )
    print(f"  first step started -> last execution finished {drain['span_s']:.2f}s")
    if floor:
        end_to_end, alone = result["steps_per_s"] / floor, drain["steps_per_s"] / floor
        print(f"efficiency end to end (steps/s / floor --pg steps/s): {end_to_end:.2f}")
        print(f"efficiency engine alone (steps/s / floor --pg steps/s): {alone:.2f}")
        return end_to_end, alone
    return None


def report_batched(result: dict[str, float], floor: float | None) -> float | None:
    """Print the batched end-to-end run; returns its efficiency against the floor."""
    print(
        f"engine end to end, events in batches of {BATCH_SIZE} (POST /events/batch):"
        f" executions={result['executions']:.0f} failed={result['failed']:.0f}"
        f" exec_per_s={result['exec_per_s']:.1f} steps_per_s={result['steps_per_s']:.1f}"
    )
    print(
        f"  first accepted -> last finished {result['span_s']:.2f}s; "
        f"all {result['executions']:.0f} events accepted in {result['accept_s']:.2f}s;"
        f" event accepted -> execution finished p50={result['p50'] * 1000:.0f}ms"
        f" p99={result['p99'] * 1000:.0f}ms"
    )
    if not floor:
        return None
    ratio = result["steps_per_s"] / floor
    print(f"efficiency end to end with batched events (steps/s / floor --pg steps/s): {ratio:.2f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-engine", action="store_true", help="only the ingest comparison")
    parser.add_argument(
        "--skip-batch",
        action="store_true",
        help="no POST /events/batch runs (ingest in batches, end to end in batches)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat each comparison, platform and floor taking turns; print the median ratio",
    )
    args = parser.parse_args()

    processes = Processes(Path(f"/tmp/iw_bench_{os.getpid()}_{secrets.token_hex(3)}"))
    processes.workdir.mkdir(parents=True, exist_ok=True)
    print(f"rate limit raised for the bench: RATE_LIMIT_DEFAULT={RATE_LIMIT}")
    print(f"logs: {processes.workdir}")
    efficiencies: list[tuple[float, float]] = []
    batched: list[float] = []
    try:
        for round_ in range(1, args.rounds + 1):
            if args.skip_engine:
                break
            if args.rounds > 1:
                print(f"--- engine round {round_}")
            # A fresh database per run: wait_finished counts every execution in it.
            with throwaway_database() as database_url:
                result, drain = run_engine(args.n, processes, database_url)
            in_batches = None
            if not args.skip_batch:
                with throwaway_database() as database_url:
                    in_batches = run_engine_batched(args.n, processes, database_url)
            floor = None if args.skip_floor else run_floor(args.n, processes)
            measured = report(result, drain, floor)
            if measured:
                efficiencies.append(measured)
            if in_batches is not None:
                ratio = report_batched(in_batches, floor)
                if ratio is not None:
                    batched.append(ratio)
        if len(efficiencies) > 1:
            print(
                f"efficiency, median of {len(efficiencies)} rounds: end to end"
                f" {statistics.median(e for e, _ in efficiencies):.2f}, engine alone"
                f" {statistics.median(a for _, a in efficiencies):.2f}"
            )
        if len(batched) > 1:
            print(
                f"efficiency end to end with batched events, median of {len(batched)} rounds:"
                f" {statistics.median(batched):.2f}"
            )
        if not args.skip_ingest:
            with throwaway_database() as database_url:
                run_ingest(processes, database_url, args.rounds, batch=not args.skip_batch)
    finally:
        processes.stop_all()


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database and empty Redis DBs for one round, gone afterwards."""
    from models.migration import drop_database

    for url in (REDIS_APP, REDIS_BROKER):
        redis.Redis.from_url(url).flushdb()
    database_url = new_database("iw_bench")
    try:
        yield database_url
    finally:
        drop_database(database_url)
        for url in (REDIS_APP, REDIS_BROKER):
            redis.Redis.from_url(url).flushdb()


if __name__ == "__main__":
    main()
