"""The cost of one workflow step in the worker: µs, SQL statements and round trips per step.

    .venv/bin/python bench/step_profile.py [-n 300] [--repeat 3] [--warmup 30] [--via-task]
        [--breakdown] [--profile cprofile|pyinstrument] [--multiproc] [--floor]
    valgrind --tool=callgrind .venv/bin/python bench/step_profile.py --callgrind -n 40 --repeat 1
    .venv/bin/python bench/step_profile.py --celery [-n 300] [-c 2] [--floor]
        [--profile cprofile] [--worker-args "..."]

In process (default): a throwaway database, the 5-step no-op workflow of
bench/engine.py, N executions started the way the events API starts them (an
event row each and tasks.launch.start_executions, committed 50 at a time),
then every ticket run by calling tasks.steprun.run_step_message in a loop, in
FIFO order like a worker draining its queue. The runtime is the worker's
(workers.app.make_celery), and its publisher really publishes each next
ticket to Redis DB 3 (flushed before and after), so a step pays its publish.

Per step it prints the wall time (µs), the CPU time of this process (µs: what
the worker pays, less sensitive than wall time to the other processes sharing
the cores), the CPU time of the database's server processes (read from
/proc: Postgres must run on this host), SQL statements, database round trips
(BEGIN, each execute, COMMIT/ROLLBACK that psycopg2 actually sends) and Redis
commands.

  --via-task   run each ticket through the Celery task (`run_step.apply`), so
               Celery's tracer and the task signal handlers (celery_* metrics)
               are included
  --breakdown  wall and CPU µs per step in each phase of the step (timers
               wrapped around the step's functions; nested phases overlap)
  --profile    cProfile or pyinstrument over the last round (with --celery:
               cProfile in every worker process, printed at the end)
  --multiproc  prometheus_client in multiprocess mode (a temp directory), as
               in docker-compose; the default is in-memory, as bench/engine.py
  --floor      also time the floor's work in process: one UPDATE + commit and
               one Celery publish per step (shared/bench/celery_floor.py --pg)
  --callgrind  under valgrind's callgrind (see above): zero the counts before
               the timed round and dump them after (callgrind_control), so the
               dump holds the instructions of the steps alone: deterministic,
               unlike times on a shared machine
  --celery     run the steps through a real Celery worker (prefork, -c
               processes): steps/s of the drain, CPU ms per step of each worker
               process and of the database; with --floor, then
               shared/bench/celery_floor.py --pg measured the same way, and the
               ratio of the two
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from harness import (
    ROOT,
    database_backends,
    engine_bench,
    free_port,
    process_cpu_seconds,
    throwaway_database,
    worker_flags,
)

# BENCH_BROKER_URL: a Redis DB of your own (it is flushed before and after).
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/3")
EVENT = "bench.noop"
STEPS = 5
LAUNCH_BATCH = 50


# --- setup ----------------------------------------------------------------------------------
def seed_workflow(rt: Any) -> Any:
    """An organization and the enabled 5-step no-op workflow, stored as the API stores it."""
    from engine.validation import validate_workflow
    from models.identity import Organization
    from models.workflow import Workflow

    normalised = validate_workflow(engine_bench().workflow(EVENT))
    definition = normalised["definition"]
    with rt.session_factory() as session:
        organization = Organization(name="Bench", slug="bench-" + secrets.token_hex(4))
        session.add(organization)
        session.flush()
        row = Workflow(
            organization_id=organization.id,
            workflow_id=normalised["workflow_id"],
            version=normalised["version"],
            name=normalised["name"],
            definition=definition,
            trigger_type="event",
            trigger_event=EVENT,
            enabled=True,
        )
        session.add(row)
        session.commit()
        session.refresh(row)
        session.expunge(row)
        return row


def launch(rt: Any, workflow_row: Any, n: int) -> list[Any]:
    """N executions, each with its event, as POST /events creates them; their first tickets."""
    from models.execution import Event
    from tasks.dispatch import Ticket
    from tasks.launch import start_executions

    tickets: list[Any] = []
    for start in range(0, n, LAUNCH_BATCH):
        with rt.session_factory() as session:
            rows = []
            for i in range(start, min(start + LAUNCH_BATCH, n)):
                now = datetime.now(UTC)
                payload = {"i": i}
                event = Event(
                    id=uuid.uuid4(),
                    organization_id=workflow_row.organization_id,
                    event_type=EVENT,
                    payload=payload,
                    received_at=now,
                )
                session.add(event)
                session.flush()
                launches = start_executions(
                    session,
                    [(workflow_row, uuid.uuid4())],
                    payload,
                    now=now,
                    trigger_type="event",
                    event=event,
                )
                rows.extend(launch.ticket for launch in launches)
            session.commit()
            tickets.extend(Ticket.from_row(row) for row in rows)
    return tickets


def worker_runtime(database_url: str) -> Any:
    """The worker's own composition (workers.app.make_celery) against the bench DBs."""
    from models.config import load_settings
    from tasks import runtime
    from workers.app import make_celery

    settings = load_settings(
        environ={},
        overrides={
            "environment": "test",
            "database_url": database_url,
            "redis_url": BROKER_URL,
            "celery_broker_url": BROKER_URL,
            "log_level": "WARNING",
        },
    )
    make_celery(settings)
    return runtime.current()


class CapturingPublisher:
    """The runtime's real publisher (it sends to Redis); also hands the tickets to the loop."""

    def __init__(self, real: Any, sink: deque[Any]) -> None:
        self._real = real
        self._sink = sink

    def publish(self, tickets: Iterable[Any]) -> int:
        items = list(tickets)
        self._sink.extend(items)
        return int(self._real.publish(items))

    def publish_rows(self, rows: Iterable[Any]) -> int:
        from tasks.dispatch import Ticket

        return self.publish(Ticket.from_row(row) for row in rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# --- counting what goes over the wire -----------------------------------------------------
class WireCounter:
    """SQL statements and round trips psycopg2 actually sends, and Redis commands.

    Statements are counted as SQLAlchemy runs them (its cursor events) and as
    models.driver sends them on the cursor (its observers). psycopg2 sends BEGIN
    on its own before the first statement of a transaction, and COMMIT/ROLLBACK
    only when a transaction is open: each COMMIT/ROLLBACK that finds the DBAPI
    connection in a transaction is counted as two round trips, its own and its
    BEGIN's.
    """

    def __init__(self, *db_engines: Any) -> None:
        from sqlalchemy import event

        from models import driver

        self.statements = 0
        self.round_trips = 0
        self.commits = 0
        self.redis_commands = 0
        for db_engine in db_engines:
            event.listen(db_engine, "before_cursor_execute", self._execute)
            driver.observe(db_engine, self._driver_statement)
            event.listen(db_engine, "commit", self._commit)
            event.listen(db_engine, "rollback", self._rollback)
            event.listen(db_engine.pool, "reset", self._reset)

    def reset(self) -> None:
        self.statements = self.round_trips = self.commits = self.redis_commands = 0

    @staticmethod
    def _in_transaction(dbapi_connection: Any) -> bool:
        import psycopg2.extensions as ext

        return bool(dbapi_connection.status == ext.STATUS_BEGIN)

    def _execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        calls = len(parameters) if many else 1
        self.round_trips += calls
        self.statements += calls * self._statements_in(statement)

    def _driver_statement(self, statement: str, seconds: float, error: Any) -> None:
        self.round_trips += 1
        self.statements += self._statements_in(statement)

    @staticmethod
    def _statements_in(sql: str) -> int:
        return sum(1 for part in sql.split(";") if part.strip())

    def _commit(self, conn: Any) -> None:
        if self._in_transaction(conn.connection.dbapi_connection):
            self.round_trips += 2
            self.commits += 1

    def _rollback(self, conn: Any) -> None:
        dbapi = conn.connection.dbapi_connection if not conn.closed else None
        if dbapi is not None and self._in_transaction(dbapi):
            self.round_trips += 2

    def _reset(self, dbapi_connection: Any, record: Any, state: Any = None) -> None:
        if self._in_transaction(dbapi_connection):
            self.round_trips += 2

    def count_redis(self, celery_app: Any) -> None:
        """Count commands on the broker connections kombu makes (the publish path)."""
        import redis.client

        original = redis.client.Redis.execute_command
        counter = self

        def counted(client: Any, *args: Any, **options: Any) -> Any:
            counter.redis_commands += 1
            return original(client, *args, **options)

        redis.client.Redis.execute_command = counted  # type: ignore[method-assign]
        pipeline_execute = redis.client.Pipeline.execute

        def counted_pipeline(pipe: Any, *args: Any, **options: Any) -> Any:
            # A pipeline is one round trip whatever it holds; its commands were
            # queued through execute_command (counted there), so undo them.
            queued = len(pipe.command_stack)
            counter.redis_commands -= queued
            counter.redis_commands += 1
            return pipeline_execute(pipe, *args, **options)

        redis.client.Pipeline.execute = counted_pipeline  # type: ignore[method-assign]


# --- where the time goes ------------------------------------------------------------------
class Phases:
    """Wall and CPU time accumulated per phase, by wrapping attributes with timers."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        original = getattr(owner, attribute, None)
        if original is None:  # not in this version of the code
            return
        wall_clock, cpu_clock = time.perf_counter, time.process_time
        wall, cpu, calls = self.wall, self.cpu, self.calls
        wall[label] = cpu[label] = 0.0
        calls[label] = 0

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall_started, cpu_started = wall_clock(), cpu_clock()
            try:
                return original(*args, **kwargs)
            finally:
                wall[label] += wall_clock() - wall_started
                cpu[label] += cpu_clock() - cpu_started
                calls[label] += 1

        setattr(owner, attribute, timed)

    def reset(self) -> None:
        for label in self.wall:
            self.wall[label] = self.cpu[label] = 0.0
            self.calls[label] = 0

    def report(self, steps: int) -> None:
        print(f"  {'phase':<42} {'wall us/step':>12} {'cpu us/step':>12} {'calls/step':>10}")
        for label, wall in self.wall.items():
            print(
                f"  {label:<42} {wall * 1e6 / steps:12.0f} {self.cpu[label] * 1e6 / steps:12.0f}"
                f" {self.calls[label] / steps:10.2f}"
            )


def instrument_phases() -> Phases:
    """The step's phases, outermost first (a phase's time includes the ones it calls)."""
    from celery import Celery
    from sqlalchemy.orm import Session

    import engine.definition
    import tasks.recording
    import tasks.stepping
    import tasks.steprun
    import tasks.transition
    from models.db import UnitOfWork

    phases = Phases()
    phases.wrap(UnitOfWork, "__enter__", "session open (UnitOfWork.__enter__)")
    phases.wrap(tasks.steprun, "lock_execution", "lock query (lock_execution)")
    phases.wrap(engine.definition.Definition, "from_dict", "Definition.from_dict")
    phases.wrap(tasks.steprun.StepAttempt, "begin", "StepAttempt.begin")
    phases.wrap(tasks.steprun, "run_attempt", "run_attempt (engine runs the step)")
    phases.wrap(tasks.stepping, "run_step", "  engine.executor.run_step")
    phases.wrap(tasks.stepping, "_ports", "  ports")
    phases.wrap(tasks.steprun, "_record", "_record (decide, collect the transition)")
    phases.wrap(tasks.transition, "deep_merge", "  context deep_merge")
    phases.wrap(tasks.recording.Recording, "write", "Recording.write (one statement)")
    phases.wrap(Session, "commit", "session commit")
    phases.wrap(tasks.steprun, "_publish", "publish (after commit)")
    phases.wrap(Celery, "send_task", "  Celery.send_task")
    phases.wrap(tasks.steprun, "record_metrics", "step metrics (record_metrics)")
    phases.wrap(UnitOfWork, "__exit__", "session close (UnitOfWork.__exit__)")
    return phases


# --- the in-process loop --------------------------------------------------------------------
def drain(rt: Any, queue: deque[Any], run: Callable[[Any], str]) -> tuple[list[float], list[str]]:
    """Run tickets FIFO until none is left; the wall time of each step."""
    from tasks.dispatch import Ticket

    times: list[float] = []
    outcomes: list[str] = []
    clock = time.perf_counter
    while queue:
        ticket = queue.popleft()
        message = ticket.message()
        started = clock()
        outcomes.append(run(Ticket.parse(message)))
        times.append(clock() - started)
    return times, outcomes


def step_runner(via_task: bool) -> Callable[[Any], str]:
    from tasks import runtime
    from tasks.steprun import run_step_message

    if not via_task:
        return lambda message: run_step_message(runtime.current(), message)
    from tasks.step_task import run_step

    def through_celery(message: Any) -> str:
        kwargs = {
            "outbox_id": message.outbox_id,
            "execution_id": str(message.execution_id),
            "step_id": message.step_id,
            "branch_key": message.branch_key,
            "attempt_group": message.attempt_group,
            "attempt": message.attempt,
            "limit_seconds": message.limit_seconds,
            "sent_at": message.sent_at,
            "mode": message.mode.value if message.mode is not None else None,
            **({"snapshot": message.snapshot} if message.snapshot is not None else {}),
        }
        return str(run_step.apply(kwargs=kwargs).get())

    return through_celery


def check_finished(rt: Any, n_total: int) -> None:
    from sqlalchemy import text

    with rt.db_engine.connect() as connection:
        done = connection.execute(
            text("SELECT count(*) FROM executions WHERE status = 'completed'")
        ).scalar_one()
        runs = connection.execute(text("SELECT count(*) FROM step_runs")).scalar_one()
        left = connection.execute(text("SELECT count(*) FROM dispatch_outbox")).scalar_one()
    if done != n_total or runs != n_total * STEPS or left:
        raise SystemExit(f"not all finished: completed={done} step_runs={runs} tickets left={left}")


def summarise(
    label: str, times: list[float], cpu: float, db_cpu: float, counter: WireCounter
) -> None:
    steps = len(times)
    micro = sorted(t * 1e6 for t in times)
    print(
        f"{label}: steps={steps} wall_us/step mean={statistics.fmean(micro):.0f} "
        f"p50={micro[steps // 2]:.0f} p90={micro[int(steps * 0.9)]:.0f} "
        f"cpu_us/step={cpu * 1e6 / steps:.0f} db_backend_cpu_us/step={db_cpu * 1e6 / steps:.0f} "
        f"sql_statements/step={counter.statements / steps:.2f} "
        f"db_round_trips/step={counter.round_trips / steps:.2f} "
        f"commits/step={counter.commits / steps:.2f} "
        f"redis_commands/step={counter.redis_commands / steps:.2f}"
    )


def execution_notify(database_url: str, mode: str) -> Any:
    """--notify: `off` drops the trigger that feeds the live streams (migration 0007_i17),
    `listened` also holds a LISTEN connection on its channel, as a stream host does
    (returned, to be closed); `on` leaves it as migrated, with nobody listening."""
    import psycopg2
    from sqlalchemy.engine import make_url

    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        if mode == "off":
            cursor.execute("DROP TRIGGER iw_executions_notify_insert ON executions")
            cursor.execute("DROP TRIGGER iw_executions_notify_update ON executions")
        elif mode == "listened":
            cursor.execute("LISTEN iw_executions")
            return connection
    connection.close()
    return None


def drain_notifications(listener: Any) -> int:
    """What the LISTEN connection received (and drops): one per committed change."""
    import select

    if listener is None:
        return 0
    received = 0
    # Until half a second passes without one: the server sends them as it can.
    while select.select([listener], [], [], 0.5)[0]:
        listener.poll()
        received += len(listener.notifies)
        listener.notifies.clear()
    return received


def run_in_process(args: argparse.Namespace) -> None:
    database_url = throwaway_database("iw_stepprof")
    listener = execution_notify(database_url, args.notify)
    print(f"execution notify trigger: {args.notify}")
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    try:
        rt = worker_runtime(database_url)
        queue: deque[Any] = deque()
        rt._publisher = CapturingPublisher(rt.publisher, queue)
        counter = WireCounter(rt.db_engine, rt.autocommit_engine)
        from celery import current_app

        counter.count_redis(current_app)
        workflow_row = seed_workflow(rt)
        run = step_runner(args.via_task)
        phases = instrument_phases() if args.breakdown else None
        # Warm up: connections, caches, compiled statements.
        queue.extend(launch(rt, workflow_row, args.warmup))
        drain(rt, queue, run)
        drain_notifications(listener)
        launched = args.warmup
        for round_ in range(args.repeat):
            queue.extend(launch(rt, workflow_row, args.n))
            launched += args.n
            broker.flushdb()
            counter.reset()
            if phases is not None:
                phases.reset()
            profiler = start_profiler(args.profile) if round_ == args.repeat - 1 else None
            if args.callgrind:
                callgrind_control("--zero")
            backends = database_backends(rt.db_engine)
            db_cpu_started = process_cpu_seconds(backends)
            cpu_started = time.process_time()
            times, outcomes = drain(rt, queue, run)
            cpu = time.process_time() - cpu_started
            db_cpu = process_cpu_seconds(backends) - db_cpu_started
            if args.callgrind:
                callgrind_control("--dump")
            if profiler is not None:
                stop_profiler(profiler, args.profile)
            summarise(f"run {round_ + 1}", times, cpu, db_cpu, counter)
            if listener is not None:
                print(f"  notifications received: {drain_notifications(listener)}")
            if phases is not None:
                phases.report(len(times))
            unexpected = {o for o in outcomes if o not in {"completed"}}
            if unexpected:
                print(f"  outcomes other than completed: {sorted(unexpected)}")
        check_finished(rt, launched)
        if args.floor:
            floor_in_process(database_url, args.n * STEPS)
        rt.dispose()
    finally:
        if listener is not None:
            listener.close()
        broker.flushdb()
        from models.migration import drop_database

        drop_database(database_url)


def callgrind_control(action: str) -> None:
    subprocess.run(["callgrind_control", action, str(os.getpid())], check=True, capture_output=True)


def start_profiler(kind: str | None) -> Any:
    if kind == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        return profiler
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        return profiler
    return None


def stop_profiler(profiler: Any, kind: str | None) -> None:
    if kind == "cprofile":
        import pstats

        profiler.disable()
        if os.environ.get("STEP_PROFILE_STATS"):  # kept for comparing two versions
            profiler.dump_stats(os.environ["STEP_PROFILE_STATS"])
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
    elif kind == "pyinstrument":
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))


def floor_in_process(database_url: str, steps: int) -> None:
    """What celery_floor.py --pg does per step in its worker, minus Celery: one UPDATE and
    commit through psycopg2, and one publish of the next task."""
    import psycopg2
    from celery import current_app
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    connection = psycopg2.connect(
        dbname=url.database, user=url.username, host=url.host, port=url.port
    )
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE floor_exec(id int primary key, step int)")
        cursor.execute("INSERT INTO floor_exec SELECT g, 0 FROM generate_series(0, 1000) g")
    connection.commit()
    backend = [connection.get_backend_pid()]
    db_cpu_started = process_cpu_seconds(backend)
    times = []
    cpu_started = time.process_time()
    for i in range(steps):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE floor_exec SET step=%s WHERE id=%s", (i, i % 1000))
        connection.commit()
        current_app.send_task("floor.step", kwargs={"ex": i, "i": i % 5}, queue="floor")
        times.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu_started
    db_cpu = process_cpu_seconds(backend) - db_cpu_started
    connection.close()
    micro = sorted(t * 1e6 for t in times)
    print(
        f"floor work in process: steps={steps} wall_us/step mean={statistics.fmean(micro):.0f} "
        f"p50={micro[steps // 2]:.0f} cpu_us/step={cpu * 1e6 / steps:.0f} "
        f"db_backend_cpu_us/step={db_cpu * 1e6 / steps:.0f} "
        "db_round_trips/step=3 (BEGIN, UPDATE, COMMIT)"
    )


# --- through a real Celery worker -----------------------------------------------------------
def session_cpu_seconds(root_pid: int) -> dict[int, float]:
    """utime + stime of every live process in the worker's session (its pool children too)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == root_pid:  # session id (start_new_session: the root's pid)
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def run_with_worker(args: argparse.Namespace) -> None:
    from sqlalchemy import text

    database_url = throwaway_database("iw_stepprof")
    listener = execution_notify(database_url, args.notify)
    print(f"execution notify trigger: {args.notify}")
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    worker = None
    try:
        rt = worker_runtime(database_url)
        workflow_row = seed_workflow(rt)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_MULTIPROC")}
        env.update(
            {
                "APP_ENV": "test",
                "DATABASE_URL": database_url,
                "REDIS_URL": BROKER_URL,
                "CELERY_BROKER_URL": BROKER_URL,
                "LOG_LEVEL": "WARNING",
                "WORKER_METRICS_PORT": str(free_port()),
                "WORKER_CONCURRENCY": str(args.c),
            }
        )
        if args.multiproc:
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="iw-stepprof-metrics-")
        profile_dir = tempfile.mkdtemp(prefix="iw-stepprof-prof-") if args.profile else ""
        # Through this script (see profiled_worker) when profiling, else the celery CLI.
        launcher = (
            [sys.executable, str(Path(__file__).resolve()), "--worker-profile-dir", profile_dir]
            if profile_dir
            else [str(Path(sys.executable).parent / "celery"), "-A", "workers.app"]
        )
        command = [*launcher, *worker_flags(args.c), *args.worker_args.split()]
        log_path = Path(tempfile.mkdtemp(prefix="iw-stepprof-")) / "worker.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        print(f"worker log: {log_path}")
        # Warm-up executions (also waits for the pool to be up).
        rt.publisher.publish(launch(rt, workflow_row, args.warmup))
        _wait_completed(rt, args.warmup)
        tickets = launch(rt, workflow_row, args.n)
        backends = database_backends(rt.db_engine)
        cpu_before = session_cpu_seconds(worker.pid)
        db_cpu_before = process_cpu_seconds(backends)
        rt.publisher.publish(tickets)
        _wait_completed(rt, args.warmup + args.n)
        cpu_after = session_cpu_seconds(worker.pid)
        per_process = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
        cpu = sum(per_process.values())
        db_cpu = process_cpu_seconds(backends) - db_cpu_before
        ids = [str(t.execution_id) for t in tickets]
        with rt.db_engine.connect() as connection:
            span = connection.execute(
                text(
                    "SELECT extract(epoch FROM max(e.completed_at) - min(s.started_at)) "
                    "FROM executions e JOIN step_runs s ON s.execution_id = e.id"
                    " WHERE e.id::text = ANY(:ids)"
                ),
                {"ids": ids},
            ).scalar_one()
        steps = args.n * STEPS
        print(
            f"celery worker -c {args.c}: steps={steps} span_s={float(span):.2f} "
            f"steps_per_s={steps / float(span):.1f} worker_cpu_ms/step={cpu * 1000 / steps:.2f} "
            f"db_backend_cpu_ms/step={db_cpu * 1000 / steps:.2f} (with this script's polls)"
        )
        for pid, seconds in sorted(per_process.items()):
            role = "main" if pid == worker.pid else "child"
            print(f"  worker pid {pid} ({role}): {seconds * 1000 / steps:.2f} cpu ms/step")
        rt.dispose()
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        if args.floor:
            floor = celery_floor(args.n)
            print(f"ratio steps/s engine / floor: {steps / float(span) / floor:.2f}")
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        if listener is not None:
            print(f"notifications received: {drain_notifications(listener)}")
            listener.close()
        broker.flushdb()
        if args.profile and worker is not None:
            print_worker_profiles(profile_dir)
        from models.migration import drop_database

        drop_database(database_url)


FLOOR_SCRIPT = ROOT.parent / "shared" / "bench" / "celery_floor.py"
FLOOR_BROKER = "redis://127.0.0.1:6379/15"


def celery_floor(n: int) -> float:
    """shared/bench/celery_floor.py --pg with its own worker (2 processes); its steps/s."""
    import re

    env = {**os.environ, "FLOOR_PG": "dbname=postgres user=postgres host=127.0.0.1"}
    redis.Redis.from_url(FLOOR_BROKER).flushdb()
    worker = subprocess.Popen(
        [sys.executable, str(FLOOR_SCRIPT), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=tempfile.gettempdir(),
    )
    try:
        time.sleep(4)
        before = session_cpu_seconds(worker.pid)
        out = subprocess.run(
            [sys.executable, str(FLOOR_SCRIPT), "run", "-e", str(n), "-s", str(STEPS), "--pg"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
            cwd=tempfile.gettempdir(),
        ).stdout.strip()
        after = session_cpu_seconds(worker.pid)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    per_process = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    steps_per_s = float(re.search(r"steps_per_s=([\d.]+)", out).group(1))  # type: ignore[union-attr]
    main = per_process.get(worker.pid, 0.0) * 1000 / (n * STEPS)
    total = sum(per_process.values()) * 1000 / (n * STEPS)
    print(f"floor: {out} worker_cpu_ms/step={total:.2f} (main {main:.2f})")
    return steps_per_s


def profiled_worker(profile_dir: str, worker_args: list[str]) -> None:
    """The Celery worker with cProfile on in each process (main included), dumped at its
    shutdown (main.prof, <pid>.prof)."""
    import cProfile

    from celery.signals import (
        worker_init,
        worker_process_init,
        worker_process_shutdown,
        worker_shutdown,
    )

    from workers.app import get_app

    profilers: list[Any] = []

    def start(**_: Any) -> None:
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()

    def dump(**_: Any) -> None:
        for profiler in profilers:
            profiler.disable()
            profiler.dump_stats(os.path.join(profile_dir, f"{os.getpid()}.prof"))

    main = cProfile.Profile()

    def start_main(**_: Any) -> None:
        main.enable()

    def dump_main(**_: Any) -> None:
        main.disable()
        main.dump_stats(os.path.join(profile_dir, "main.prof.main"))

    worker_init.connect(start_main, weak=False)
    worker_shutdown.connect(dump_main, weak=False)
    worker_process_init.connect(start, weak=False)
    worker_process_shutdown.connect(dump, weak=False)
    get_app().worker_main(worker_args)


def print_worker_profiles(profile_dir: str) -> None:
    import pstats

    files = sorted(str(p) for p in Path(profile_dir).glob("*.prof"))
    if not files:
        print(f"no profiles in {profile_dir} (did the pool shut down cleanly?)")
        return
    stats = pstats.Stats(*files).strip_dirs()
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    main = Path(profile_dir) / "main.prof.main"
    if main.exists():
        print("=== worker main process")
        main_stats = pstats.Stats(str(main)).strip_dirs()
        main_stats.sort_stats("tottime").print_stats(50)


def _wait_completed(rt: Any, n: int, timeout: float = 600) -> None:
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rt.db_engine.connect() as connection:
            done = connection.execute(
                text("SELECT count(*) FROM executions WHERE status = 'completed'")
            ).scalar_one()
        if done >= n:
            return
        time.sleep(0.05)
    raise SystemExit(f"executions did not finish within {timeout} s")


def main() -> None:
    if sys.argv[1:2] == ["--worker-profile-dir"]:  # the child that --celery --profile starts
        profiled_worker(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=300, help="executions per round")
    parser.add_argument("--warmup", type=int, default=30, help="executions run before timing")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (in process)")
    parser.add_argument("--via-task", action="store_true")
    parser.add_argument("--profile", choices=("cprofile", "pyinstrument"))
    parser.add_argument("--multiproc", action="store_true")
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--floor", action="store_true")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--celery", action="store_true")
    parser.add_argument("-c", type=int, default=2, help="worker processes (--celery)")
    parser.add_argument(
        "--notify",
        choices=("on", "off", "listened"),
        default="on",
        help="the live streams' trigger on executions (see execution_notify)",
    )
    parser.add_argument(
        "--worker-args", default="", help='extra worker options, e.g. "--prefetch-multiplier 8"'
    )
    args = parser.parse_args()
    if args.multiproc and not args.celery:
        # Before prometheus_client is imported: it picks the value class at import.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="iw-stepprof-metrics-")
    if args.celery:
        run_with_worker(args)
    else:
        run_in_process(args)


if __name__ == "__main__":
    main()
