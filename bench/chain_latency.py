"""Latency of one execution: a 40-step sequential no-op workflow, event to finish.

    .venv/bin/python bench/chain_latency.py [--steps 40] [--runs 5] [--idle-samples 100]
        [--skip-floor]

Starts the stack as bench/engine.py does (a throwaway database, gunicorn with
2 sync workers, a Celery worker with 2 prefork processes, beat), then:

  chain: one warm-up execution, then RUNS executions one after another, each
    started by POST /api/v1/events and waited for alone. Printed per run and
    as the median: the total seconds and ms per step as the client saw them
    (event sent -> the execution seen finished, polled in Postgres every 2 ms),
    and from the execution's own timestamps (started_at, set when the event is
    accepted, -> completed_at).
  idle: IDLE_SAMPLES events of a one-step workflow, each sent when the
    previous execution finished and the stack is idle; p50/p99 of event
    accepted (the execution's started_at) -> its first step started (the step
    run's started_at): the API's commit and publish, the broker, the worker
    taking the message and reading the execution.

  floor: then, with the stack stopped, the same chain as Celery alone: RUNS
    times `shared/bench/celery_floor.py run -e 1 -s STEPS --pg` (a chain of
    STEPS Celery tasks, each committing one UPDATE, on its own 2-process
    worker): the median total seconds and ms per step, the handoff cost any
    Celery-chain engine pays on this machine at this moment (its total is
    polled every 10 ms and includes sending the chain). --skip-floor skips it.

Compare: Hatchet 1.2 s and Temporal 3.0 s for 40 sequential lightweight tasks
(published); Temporal's dev server 51 ms a step, DBOS 3.1 ms a step measured
on this kind of machine (issue 18).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from harness import engine_bench, free_port
from sqlalchemy import create_engine, text

bench = engine_bench()


def wait_done(db: Any, execution_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    query = text("SELECT status FROM executions WHERE id = :id")
    with db.connect() as connection:
        while time.monotonic() < deadline:
            status = connection.execute(query, {"id": execution_id}).scalar_one()
            connection.rollback()  # a fresh snapshot for the next poll
            if status in ("completed", "failed", "cancelled"):
                if status != "completed":
                    raise SystemExit(f"execution {execution_id} ended {status}")
                return
            time.sleep(0.002)
    raise SystemExit(f"execution {execution_id} not finished in {timeout} s")


def own_span(db: Any, execution_id: str) -> float:
    return _seconds(
        db,
        "SELECT extract(epoch FROM completed_at - started_at) FROM executions WHERE id = :id",
        execution_id,
    )


def first_step_delay(db: Any, execution_id: str) -> float:
    return _seconds(
        db,
        "SELECT extract(epoch FROM min(s.started_at) - e.started_at)"
        " FROM executions e JOIN step_runs s ON s.execution_id = e.id"
        " WHERE e.id = :id GROUP BY e.started_at",
        execution_id,
    )


def _seconds(db: Any, query: str, execution_id: str) -> float:
    with db.connect() as connection:
        return float(connection.execute(text(query), {"id": execution_id}).scalar_one())


def run(args: argparse.Namespace) -> None:
    processes = bench.Processes(Path(f"/tmp/iw_chain_{free_port()}"))
    processes.workdir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {processes.workdir}")
    try:
        with bench.throwaway_database() as database_url:
            measure(args, processes, database_url)
        processes.stop_all()
        if not args.skip_floor:
            floor_chain(args, processes)
    finally:
        processes.stop_all()


def measure(args: argparse.Namespace, processes: Any, database_url: str) -> None:
    port = free_port()
    env = bench.stack_env(database_url, port)
    processes.spawn("api", bench.gunicorn_command(port, "api.wsgi:app"), env)
    processes.spawn("worker", bench.worker_command(), env)
    beat_schedule = str(processes.workdir / "beat-schedule")
    beat = [str(bench.BIN / "celery"), "-A", "workers.app", "beat", "--loglevel", "WARNING"]
    processes.spawn("beat", [*beat, "--schedule", beat_schedule], env)
    bench.wait_http(f"http://127.0.0.1:{port}/ready")
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {bench.register(base)}"}
    for workflow in (
        bench.noop_chain("chain", "bench.chain", args.steps),
        bench.noop_chain("one_step", "bench.one", 1),
    ):
        httpx.post(
            f"{base}/workflows", json=workflow, headers=headers, timeout=10
        ).raise_for_status()
    time.sleep(2)  # let the worker finish booting its pool
    sender = bench.EventSender(port, headers)
    db = create_engine(database_url)

    def one(event: str, i: int) -> tuple[str, float]:
        started = time.perf_counter()
        execution_id = sender.send({"event_type": event, "payload": {"i": i}})
        wait_done(db, execution_id)
        return execution_id, time.perf_counter() - started

    one("bench.chain", -1)  # warm-up: both gunicorn workers' and the pool's first use
    one("bench.chain", -2)
    client_s, own_s = [], []
    for i in range(args.runs):
        execution_id, seen = one("bench.chain", i)
        own = own_span(db, execution_id)
        client_s.append(seen)
        own_s.append(own)
        print(
            f"chain run {i + 1}: client {seen:.3f} s ({seen * 1000 / args.steps:.2f} ms/step),"
            f" execution's own timestamps {own:.3f} s ({own * 1000 / args.steps:.2f} ms/step)"
        )
    client, own = statistics.median(client_s), statistics.median(own_s)
    print(
        f"chain of {args.steps} steps, median of {args.runs} runs: client {client:.3f} s"
        f" = {client * 1000 / args.steps:.2f} ms/step; execution's own timestamps {own:.3f} s"
        f" = {own * 1000 / args.steps:.2f} ms/step"
    )

    delays = []
    for i in range(args.idle_samples):
        execution_id, _ = one("bench.one", i)
        delays.append(first_step_delay(db, execution_id))
        time.sleep(0.02)  # idle between samples
    print(
        f"event accepted -> first step started, at idle ({args.idle_samples} samples):"
        f" p50={bench.percentile(delays, 0.50) * 1000:.2f} ms"
        f" p99={bench.percentile(delays, 0.99) * 1000:.2f} ms"
        f" max={max(delays) * 1000:.2f} ms"
    )
    sender.close()
    db.dispose()


def floor_chain(args: argparse.Namespace, processes: Any) -> None:
    env = bench.start_floor_worker(processes)
    if env is None:
        return
    totals = []
    for _ in range(args.runs + 1):  # the first is a warm-up
        out = bench.floor_run(processes, env, executions=1, steps=args.steps)
        match = re.search(r"total_s=([\d.]+)", out)
        if match is None:
            raise SystemExit(f"floor: unexpected output {out!r}")
        totals.append(float(match.group(1)))
    processes.stop("floor-worker")
    total = statistics.median(totals[1:])
    print(
        f"floor chain of {args.steps} Celery tasks (celery_floor.py -e 1 --pg), median of"
        f" {args.runs} runs: {total:.3f} s = {total * 1000 / args.steps:.2f} ms/step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-samples", type=int, default=100)
    parser.add_argument("--skip-floor", action="store_true")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
