"""The cost of one POST /api/v1/events in the API process: µs, SQL statements, Redis commands.

    .venv/bin/python bench/ingest_profile.py [-n 500] [--warmup 50] [--api-key | --floor]
        [--profile cprofile] [--top 40] [--dump FILE]
    valgrind --tool=callgrind --callgrind-out-file=/tmp/ingest.cg \
        .venv/bin/python bench/ingest_profile.py --callgrind -n 100

In process, with the Flask test client (no gunicorn, no sockets to the
client): a throwaway database, a registered user, the 5-step no-op workflow of
bench/engine.py subscribed to the event wrk sends (shared/bench/post_event.lua),
then N events posted one after the other. The app is the real one
(api.app.create_app) with its real Postgres, Redis and broker (Redis DBs 4 and
5, flushed before and after), the rate limit raised as in bench/engine.py.

Per request it prints the wall time and this process's CPU time (µs), the
CPU time of the database's server processes, SQL statements and round trips
(BEGIN, each statement, COMMIT/ROLLBACK) and Redis commands (the server's
command count, so the broker's publishes are included). --profile prints the
functions with the most cumulative and own time. --callgrind (under valgrind,
as above) zeroes the instruction counts before the timed requests and dumps
them after: the API's instructions per request are the dump's total / N,
repeatable whatever else the machine is doing (times are not).

--floor measures shared/bench/ingest_floor.py the same way (its one INSERT and
one publish, the same test client), for the ratio per request.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import redis
from harness import (
    SHARED_BENCH,
    database_backends,
    engine_bench,
    process_cpu_seconds,
    throwaway_database,
)
from sqlalchemy import event

REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")
REDIS_APP = f"{REDIS_SERVER}/4"
REDIS_BROKER = f"{REDIS_SERVER}/5"
EVENT_BODY = json.loads(
    '{"event_type":"order.checkout.initiated","source":"bench","payload":'
    '{"order":{"id":"o-1","total":12000},"customer":{"tier":"silver","name":"Ada"}}}'
)


class RoundTrips:
    """Statements and round trips the app's engines send (the autocommit engine sends
    no BEGIN, COMMIT or ROLLBACK)."""

    def __init__(self, db_engine: Any, autocommit_engine: Any) -> None:
        from models import driver

        self.statements = 0
        self.round_trips = 0
        for engine in (db_engine, autocommit_engine):
            event.listen(engine, "before_cursor_execute", self._execute)
            driver.observe(engine, self._execute)  # statements sent on the driver's cursor
        event.listen(db_engine, "begin", self._one)
        event.listen(db_engine, "commit", self._one)
        event.listen(db_engine, "rollback", self._one)

    def _execute(self, *args: Any) -> None:
        self.statements += 1
        self.round_trips += 1

    def _one(self, *args: Any) -> None:
        self.round_trips += 1


def redis_commands(client: redis.Redis) -> int:
    stats = client.info("stats")
    return int(stats["total_commands_processed"])


def callgrind_control(action: str) -> None:
    subprocess.run(["callgrind_control", action, str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--api-key", action="store_true", help="authenticate with an API key")
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="post N events a request through POST /events/batch; figures are per event",
    )
    parser.add_argument("--floor", action="store_true", help="measure ingest_floor.py instead")
    parser.add_argument("--profile", choices=["cprofile"])
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--dump", help="with --profile: also write the pstats file here")
    parser.add_argument("--callgrind", action="store_true", help="run under valgrind (above)")
    args = parser.parse_args()
    for url in (REDIS_APP, REDIS_BROKER):
        redis.Redis.from_url(url).flushdb()
    try:
        if args.floor:
            measure_floor(args)
        else:
            measure_platform(args)
    finally:
        for url in (REDIS_APP, REDIS_BROKER):
            redis.Redis.from_url(url).flushdb()


def measure_platform(args: argparse.Namespace) -> None:
    from api.app import create_app
    from api.services import services
    from models.migration import drop_database

    database_url = throwaway_database("iw_ingestprof")
    try:
        app = create_app(
            {
                "environment": "test",
                "database_url": database_url,
                "redis_url": REDIS_APP,
                "celery_broker_url": REDIS_BROKER,
                "jwt_secret": secrets.token_hex(32),
                "rate_limit_default": "1000000/second",
                "log_level": "WARNING",
            }
        )
        client = app.test_client()
        headers = caller_headers(client, api_key=args.api_key)

        def post() -> None:
            response = client.post("/api/v1/events", json=EVENT_BODY, headers=headers)
            if response.status_code != 202:
                raise SystemExit(f"POST /events answered {response.status_code}: {response.data!r}")

        batch = {"events": [EVENT_BODY] * args.batch}

        def post_batch() -> None:
            response = client.post("/api/v1/events/batch", json=batch, headers=headers)
            if response.status_code != 207 or response.get_json()["rejected"]:
                raise SystemExit(f"POST /events/batch answered {response.status_code}")

        with app.app_context():
            app_services = services()
        db_engine = app_services.db_engine
        credential = "API key" if args.api_key else "JWT"
        label = f"POST /api/v1/events ({credential})"
        if args.batch:
            label = f"POST /api/v1/events/batch of {args.batch} ({credential}), per event"
        trips = RoundTrips(db_engine, app_services.autocommit_engine)
        sender = post_batch if args.batch else post
        measure(args, label, sender, lambda: database_backends(db_engine), trips)
        app_services.dispose()
    finally:
        drop_database(database_url)


def caller_headers(client: Any, *, api_key: bool) -> dict[str, str]:
    """Register a user, subscribe the bench workflow; the user's token or a new API key."""
    name = "prof" + secrets.token_hex(4)
    password = "correct-horse-9"
    client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": password},
    )
    token = client.post(
        "/api/v1/auth/login", json={"username": name, "password": password}
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/api/v1/workflows", json=engine_bench().workflow(EVENT_BODY["event_type"]), headers=headers
    )
    assert created.status_code == 201, created.get_json()
    if not api_key:
        return headers
    key = client.post(
        "/api/v1/auth/api-keys",
        json={"name": "bench", "scopes": ["event:create"]},
        headers=headers,
    )
    assert key.status_code == 201, key.get_json()
    return {"X-API-Key": key.get_json()["api_key"]}


def measure_floor(args: argparse.Namespace) -> None:
    """shared/bench/ingest_floor.py in process, the same way (its broker: REDIS_BROKER)."""
    os.environ["FLOOR_BROKER"] = REDIS_BROKER
    os.environ.setdefault("FLOOR_PG", "dbname=postgres user=postgres host=127.0.0.1")
    sys.path.insert(0, str(SHARED_BENCH))
    import ingest_floor

    client = ingest_floor.app.test_client()

    def post() -> None:
        response = client.post("/e", json=EVENT_BODY)
        if response.status_code != 202:
            raise SystemExit(f"POST /e answered {response.status_code}: {response.data!r}")

    def backends() -> list[int]:  # the floor's one pooled connection
        connection = ingest_floor.pool().getconn()
        try:
            return [connection.get_backend_pid()]
        finally:
            ingest_floor.pool().putconn(connection)

    measure(args, "POST /e of ingest_floor.py", post, backends, None)


def measure(
    args: argparse.Namespace,
    label: str,
    post: Callable[[], None],
    backends: Callable[[], list[int]],
    trips: RoundTrips | None,
) -> None:
    for _ in range(args.warmup):
        post()
    database_pids = backends()
    counter = redis.Redis.from_url(REDIS_APP)
    if trips is not None:
        trips.statements = trips.round_trips = 0
    redis_before = redis_commands(counter)
    db_cpu_before = process_cpu_seconds(database_pids)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    if args.callgrind:
        callgrind_control("--zero")
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    for _ in range(args.n):
        post()
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    if args.callgrind:
        callgrind_control("--dump")
    if profiler:
        profiler.disable()
    db_cpu = process_cpu_seconds(database_pids) - db_cpu_before
    redis_count = redis_commands(counter) - redis_before - 1  # less the INFO itself
    counter.close()
    n = args.n * max(1, getattr(args, "batch", 0))  # per event
    print(f"{label} x{n}")
    print(f"  wall per request:           {wall / n * 1e6:8.0f} µs")
    print(f"  API CPU per request:        {cpu / n * 1e6:8.0f} µs")
    print(f"  Postgres CPU per request:   {db_cpu / n * 1e6:8.0f} µs")
    if trips is not None:
        print(f"  SQL statements per request: {trips.statements / n:8.2f}")
        print(f"  DB round trips per request: {trips.round_trips / n:8.2f}")
    print(f"  Redis commands per request: {redis_count / n:8.2f}")
    if profiler:
        if args.dump:
            profiler.dump_stats(args.dump)
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
