"""Analytics endpoints on 100k executions of one organization.

    .venv/bin/python bench/analytics.py [--executions N] [--repeat R] [--keep]

Creates a throwaway database (migrated to head), registers a user through the
API, inserts N executions spread over 30 days with generate_series (plus about
two step runs per execution and N/2 events) for that user's organization and a
noise organization, runs ANALYZE, then times every analytics endpoint for every
time range through the Flask test client (auth, SQL and serialisation
included). Finally it prints EXPLAIN (ANALYZE, BUFFERS) of the slowest SQL
statement of the slowest request. Rows carry a realistic pinned definition and
payload, so scans pay for row width as they would in production;
`--without-analytics-indexes` drops migration 0004's covering indexes to compare.

Needs Postgres (TEST_DATABASE_URL, default postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/11; only rate-limit keys).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from models.config import normalize_database_url

SERVER_URL = normalize_database_url(
    os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
API = "/api/v1"
ENDPOINTS = ("dashboard", "stats", "trends", "workflows", "errors", "steps")
RANGES = ("1h", "24h", "7d", "30d")

WORKFLOWS_SQL = """
INSERT INTO workflows (id, organization_id, workflow_id, version, name, definition,
                       trigger_type, enabled)
SELECT gen_random_uuid(), :org, 'wf_' || n, '1', 'Workflow ' || n,
       '{"trigger": {"type": "manual"}, "steps": []}', 'manual', true
FROM generate_series(1, 20) AS n
"""

# Statuses: 70% completed, 15% failed, 5% cancelled, the rest in flight.
EXECUTIONS_SQL = """
INSERT INTO executions (id, organization_id, workflow_row_id, workflow_id, workflow_version,
                        definition, status, result, error_type, error_message, trigger_type,
                        trigger_payload, context, started_at, completed_at, duration_ms,
                        created_at, updated_at)
SELECT gen_random_uuid(), :org, w.id, w.workflow_id, '1', CAST(:definition AS jsonb),
       s.status,
       CASE s.status WHEN 'completed' THEN (ARRAY['allowed','blocked','executed'])[1 + n % 3]
                     WHEN 'failed' THEN 'failed' END,
       CASE s.status WHEN 'failed' THEN (ARRAY['timeout','step_error','context_error'])[1 + n % 3]
                     WHEN 'cancelled' THEN 'cancelled' END,
       CASE s.status WHEN 'failed' THEN 'error number ' || (n % 17) END,
       'manual', CAST(:payload AS jsonb),
       CAST(:payload AS jsonb) || jsonb_build_object('execution', jsonb_build_object('n', n)),
       t.created,
       CASE WHEN s.status IN ('completed','failed','cancelled')
            THEN t.created + make_interval(secs => (n % 9000) / 100.0) END,
       CASE WHEN s.status IN ('completed','failed','cancelled') THEN (n % 9000) * 10 END,
       t.created, t.created
FROM generate_series(1, :count) AS n
CROSS JOIN LATERAL (
    SELECT now() - (random() * interval '30 days') AS created,
           1 + (n % 20) AS slot
) AS t
CROSS JOIN LATERAL (
    SELECT CASE WHEN r < 0.70 THEN 'completed' WHEN r < 0.85 THEN 'failed'
                WHEN r < 0.90 THEN 'cancelled' WHEN r < 0.94 THEN 'waiting'
                WHEN r < 0.97 THEN 'running' ELSE 'pending' END AS status
    FROM (SELECT random() AS r) AS u
) AS s
JOIN workflows w ON w.organization_id = :org AND w.workflow_id = 'wf_' || t.slot
"""

STEP_RUNS_SQL = """
INSERT INTO step_runs (id, organization_id, execution_id, step_id, step_type, attempt,
                       status, input, output, duration_ms, created_at)
SELECT gen_random_uuid(), e.organization_id, e.id, step.id, step.type, a.attempt,
       CASE WHEN a.attempt < a.attempts THEN 'failed'
            WHEN e.status = 'failed' AND step.id = 'notify' THEN 'failed'
            ELSE 'completed' END,
       CAST(:payload AS jsonb), CAST(:payload AS jsonb),
       (abs(hashtext(e.id::text || step.id || a.attempt)) % 5000),
       e.created_at + make_interval(secs => a.attempt)
FROM executions e
CROSS JOIN (VALUES ('check', 'condition'), ('notify', 'execute')) AS step(id, type)
CROSS JOIN LATERAL (
    SELECT g AS attempt, x.attempts
    FROM (SELECT CASE WHEN abs(hashtext(e.id::text || step.id)) % 10 = 0 THEN 2 ELSE 1 END
                 AS attempts) AS x,
         generate_series(1, x.attempts) AS g
) AS a
WHERE e.organization_id = :org
"""

EVENTS_SQL = """
INSERT INTO events (id, organization_id, event_type, payload, triggered_workflows, received_at)
SELECT gen_random_uuid(), :org, 'order.created', '{}'::jsonb,
       jsonb_build_array('wf_' || (1 + n % 20)), now() - random() * interval '30 days'
FROM generate_series(1, :count) AS n
"""

# A realistic pinned definition (one of the original's examples) and payload, so that
# execution rows are as wide as in production and scans pay for it.
EXAMPLE = Path(__file__).resolve().parents[1] / "examples/original/high-value-order-approval.json"
DEFINITION = EXAMPLE.read_text()
PAYLOAD = json.dumps(
    {
        "order": {
            "id": "ord-000123",
            "total": 1234.5,
            "currency": "EUR",
            "items": [{"sku": f"SKU-{i}", "qty": i, "price": 9.99 * i} for i in range(8)],
        },
        "customer": {"id": "cus-42", "email": "someone@example.com", "tier": "gold"},
    }
)

ANALYTICS_INDEXES = ("ix_executions_org_created_analytics", "ix_step_runs_org_created_analytics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--without-analytics-indexes",
        action="store_true",
        help="drop the covering indexes of migration 0004 first, to compare",
    )
    args = parser.parse_args()

    from models.migration import create_database_if_missing, drop_database, upgrade_to_head

    name = f"iw_bench_analytics_{os.getpid()}"
    url = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    create_database_if_missing(url)
    try:
        upgrade_to_head(url)
        run(url, args.executions, args.repeat, without_indexes=args.without_analytics_indexes)
    finally:
        if args.keep:
            print(f"\nkept database {name}")
        else:
            drop_database(url)


def run(url: str, executions: int, repeat: int, *, without_indexes: bool) -> None:
    from api.app import create_app
    from tests.support import register

    app = create_app(
        {
            "environment": "test",
            "database_url": url,
            "redis_url": REDIS_URL,
            "jwt_secret": secrets.token_hex(32),
            "rate_limit_default": "1000000/second",
            "rate_limit_auth": "1000000/minute",
            "log_level": "WARNING",
        }
    )
    client = app.test_client()
    owner = register(client)
    noise = register(client)
    db_engine = app.extensions["iw"].db_engine

    started = time.perf_counter()
    with db_engine.begin() as connection:
        for org, count in ((owner.organization_id, executions), (noise.organization_id, 10_000)):
            connection.execute(text(WORKFLOWS_SQL), {"org": org})
            connection.execute(
                text(EXECUTIONS_SQL),
                {"org": org, "count": count, "definition": DEFINITION, "payload": PAYLOAD},
            )
            connection.execute(text(STEP_RUNS_SQL), {"org": org, "payload": PAYLOAD})
            connection.execute(text(EVENTS_SQL), {"org": org, "count": count // 2})
    with db_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if without_indexes:
            for index in ANALYTICS_INDEXES:
                connection.execute(text(f"DROP INDEX {index}"))
        connection.execute(text("VACUUM ANALYZE"))
        sizes = connection.execute(
            text(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables"
                " WHERE relname IN ('executions', 'step_runs', 'events') ORDER BY relname"
            )
        ).all()
    label = "without" if without_indexes else "with"
    print(f"{label} the covering indexes of migration 0004")
    print(
        f"seeded in {time.perf_counter() - started:.1f}s: "
        + ", ".join(f"{table}={rows}" for table, rows in sizes)
    )

    timings: dict[tuple[str, str], list[float]] = {}
    for endpoint in ENDPOINTS:
        for time_range in RANGES:
            path = f"{API}/analytics/{endpoint}?time_range={time_range}"
            response = owner.get(path)  # warm-up
            assert response.status_code == 200, response.json
            samples = []
            for _ in range(repeat):
                begin = time.perf_counter()
                response = owner.get(path)
                samples.append((time.perf_counter() - begin) * 1000)
                assert response.status_code == 200
            timings[(endpoint, time_range)] = samples

    print(f"\nmedian (min) ms over {repeat} requests, through the Flask test client")
    print(f"{'endpoint':<12}" + "".join(f"{r:>18}" for r in RANGES))
    for endpoint in ENDPOINTS:
        cells = []
        for time_range in RANGES:
            samples = timings[(endpoint, time_range)]
            cells.append(f"{statistics.median(samples):>10.1f} ({min(samples):>5.1f})")
        print(f"{endpoint:<12}" + "".join(f"{cell:>18}" for cell in cells))

    slowest = max(timings, key=lambda key: statistics.median(timings[key]))
    explain_slowest_statement(owner, db_engine, slowest)


def explain_slowest_statement(owner: Any, db_engine: Any, key: tuple[str, str]) -> None:
    endpoint, time_range = key
    statements: list[tuple[float, str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        statements.append((elapsed, statement, parameters))

    event.listen(db_engine, "before_cursor_execute", before)
    event.listen(db_engine, "after_cursor_execute", after)
    try:
        owner.get(f"{API}/analytics/{endpoint}?time_range={time_range}")
    finally:
        event.remove(db_engine, "before_cursor_execute", before)
        event.remove(db_engine, "after_cursor_execute", after)
    elapsed, statement, parameters = max(statements, key=lambda item: item[0])
    print(f"\nslowest request: /analytics/{endpoint}?time_range={time_range}")
    print(
        f"its slowest statement ({elapsed * 1000:.1f} ms):\n{statement}\nparameters: {parameters}"
    )
    from api.analytics.service import SORT_MEMORY

    with db_engine.connect() as connection:
        connection.execute(SORT_MEMORY)  # the request's own session settings
        plan = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
        ).scalars()
        print("\n" + "\n".join(plan))
        connection.rollback()


if __name__ == "__main__":
    main()
