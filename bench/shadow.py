"""Shadow run of 10,000 recorded events: time and peak memory.

    .venv/bin/python bench/shadow.py [--events N] [--keep]

Creates a throwaway database (migrated to head) holding one organization with
examples/order-triage.json (1.0.0) and N recorded `order.placed` events, each
with the execution it started, its step runs and, for large orders, its
approval (approved or rejected), as the real runs write them. The candidate
lowers the review threshold from 1000 to 500, so about a quarter of the events
change (allowed → waiting, unresolved: nobody decided an approval that was
never asked for) and are written as differences.

Then it runs tasks.shadow.run_report (what the worker's task and the inline
request both run) twice on new reports: once timed, once under tracemalloc
for the peak of Python allocations; both also at N/5 events, to show that the
peak does not grow with the number of events (they are streamed in chunks).
Target (issue 16): 10,000 events in under 30 s.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import time
import tracemalloc
import uuid
from typing import Any

from harness import ROOT, throwaway_database

from engine.templating import TemplateRenderer
from models.db import make_db_engine, make_session_factory
from models.migration import drop_database
from models.shadow import ShadowReport
from models.workflow import Workflow
from tasks import shadow

EVENTS_SQL = """
WITH ev AS (
  INSERT INTO events (id, organization_id, event_type, source, payload, received_at)
  SELECT gen_random_uuid(), :org, 'order.placed', 'bench',
         jsonb_build_object('order', jsonb_build_object('id', 'o-' || n, 'total', (n * 37) % 2000)),
         now() - make_interval(secs => n)
  FROM generate_series(1, :n) AS n
  RETURNING id, payload, received_at
)
INSERT INTO executions (id, organization_id, workflow_row_id, workflow_id, workflow_version,
                        definition, status, result, trigger_type, trigger_event,
                        trigger_event_id, trigger_payload, context, started_at, completed_at,
                        created_at, updated_at)
SELECT gen_random_uuid(), :org, :row, 'order-triage', '1.0.0', CAST(:definition AS jsonb),
       'completed',
       CASE WHEN (payload->'order'->>'total')::int < 1000
                 OR (payload->'order'->>'total')::int % 2 = 0 THEN 'allowed' ELSE 'blocked' END,
       'event', 'order.placed', id, payload, payload, received_at, received_at, received_at,
       received_at
FROM ev
"""

# check_total, then accept (small); check_total, manager_review, accept or refuse (large).
STEP_RUNS_SQL = """
INSERT INTO step_runs (id, organization_id, execution_id, step_id, step_type, status, output,
                       started_at, completed_at, created_at)
SELECT gen_random_uuid(), e.organization_id, e.id, s.step_id, s.step_type, 'completed',
       s.output, e.created_at + s.k * interval '1 ms', e.created_at + s.k * interval '1 ms',
       e.created_at + s.k * interval '1 ms'
FROM executions e,
     LATERAL (SELECT (e.trigger_payload->'order'->>'total')::int AS total) t,
     LATERAL (VALUES
       (1, 'check_total', 'condition', jsonb_build_object('result', t.total >= 1000)),
       (2, CASE WHEN t.total >= 1000 THEN 'manager_review' ELSE 'accept' END, 'action',
        jsonb_build_object('action', CASE WHEN t.total >= 1000 THEN 'require_approval'
                                          ELSE 'allow' END)),
       (3, CASE WHEN t.total < 1000 THEN NULL WHEN e.result = 'allowed' THEN 'accept'
                ELSE 'refuse' END, 'action',
        jsonb_build_object('action', CASE WHEN e.result = 'allowed' THEN 'allow' ELSE 'block' END))
     ) AS s(k, step_id, step_type, output)
WHERE e.organization_id = :org AND s.step_id IS NOT NULL
"""

# What event ingestion stores with each event: the workflows it started and their executions.
EVENT_EXECUTIONS_SQL = """
UPDATE events SET triggered_workflows = jsonb_build_array(e.workflow_id),
                  execution_ids = jsonb_build_array(e.id::text)
FROM executions e
WHERE e.trigger_event_id = events.id AND events.organization_id = :org
"""

APPROVALS_SQL = """
INSERT INTO approvals (id, organization_id, execution_id, workflow_id, step_id, entity_type,
                       approver_role, status, decided_at, requested_at)
SELECT gen_random_uuid(), organization_id, id, workflow_id, 'manager_review', 'order',
       'sales_manager', CASE WHEN result = 'allowed' THEN 'approved' ELSE 'rejected' END,
       created_at, created_at
FROM executions
WHERE organization_id = :org AND (trigger_payload->'order'->>'total')::int >= 1000
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()
    url = throwaway_database("bench_shadow")
    db_engine = make_db_engine(url, pool_size=2)
    try:
        sessions = make_session_factory(db_engine)
        organization_id, row, workflow = seed(sessions, args.events)
        candidate = copy.deepcopy(workflow["definition"])
        candidate["steps"][0]["condition"]["value"] = 500
        print(f"shadow run of {args.events} recorded events (order-triage, threshold 1000 → 500)")
        for n in (args.events // 5, args.events):
            timed(sessions, organization_id, row, candidate, n)
        for n in (args.events // 5, args.events):
            traced(sessions, organization_id, row, candidate, n)
    finally:
        db_engine.dispose()
        if args.keep:
            print(f"kept {url}")
        else:
            drop_database(url)


def seed(sessions: Any, n: int) -> tuple[uuid.UUID, Workflow, dict[str, Any]]:
    from sqlalchemy import text

    from api.workflows.service import validate
    from models.identity import Organization

    workflow = validate(json.loads((ROOT / "examples" / "order-triage.json").read_text()))
    started = time.perf_counter()
    with sessions() as session, session.begin():
        organization = Organization(name="Bench", slug=f"bench-{uuid.uuid4().hex[:8]}")
        session.add(organization)
        session.flush()
        row = Workflow(
            organization_id=organization.id,
            workflow_id=workflow["workflow_id"],
            version=workflow["version"],
            name=workflow["name"],
            definition=workflow["definition"],
            trigger_type="event",
            trigger_event="order.placed",
            enabled=True,
        )
        session.add(row)
        session.flush()
        parameters = {
            "org": organization.id,
            "row": row.id,
            "n": n,
            "definition": json.dumps(workflow["definition"]),
        }
        for statement in (EVENTS_SQL, EVENT_EXECUTIONS_SQL, STEP_RUNS_SQL, APPROVALS_SQL):
            session.execute(text(statement), parameters)
        organization_id = organization.id
        session.expunge(row)
    with sessions() as session:
        session.execute(text("ANALYZE"))
        session.commit()
    print(f"seeded {n} events with their executions in {time.perf_counter() - started:.1f} s")
    return organization_id, row, workflow


def new_report(
    sessions: Any, organization_id: uuid.UUID, row: Workflow, candidate: dict[str, Any], n: int
) -> uuid.UUID:
    with sessions() as session, session.begin():
        report = ShadowReport(
            organization_id=organization_id,
            workflow_row_id=row.id,
            workflow_id=row.workflow_id,
            current_definition=row.definition,
            candidate=candidate,
            selection=shadow.Selection(limit=n).to_dict(),
            status=shadow.PENDING,
        )
        session.add(report)
        session.flush()
        return report.id


def timed(
    sessions: Any, organization_id: uuid.UUID, row: Workflow, candidate: dict[str, Any], n: int
) -> None:
    report_id = new_report(sessions, organization_id, row, candidate, n)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    replayed = shadow.run_report(sessions, report_id, TemplateRenderer())
    elapsed = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = summary_of(sessions, report_id)
    print(
        f"  {replayed:>6} events replayed in {elapsed:6.2f} s ({replayed / elapsed:,.0f}/s); "
        f"differences {summary['differences']}, by change {summary['by_change']}; "
        f"peak RSS {rss_after / 1024:.0f} MiB (grew {max(0, rss_after - rss_before) / 1024:.1f})"
    )
    if replayed != n:
        sys.exit(f"expected {n} events replayed, got {replayed}")


def traced(
    sessions: Any, organization_id: uuid.UUID, row: Workflow, candidate: dict[str, Any], n: int
) -> None:
    report_id = new_report(sessions, organization_id, row, candidate, n)
    tracemalloc.start()
    replayed = shadow.run_report(sessions, report_id, TemplateRenderer())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {replayed:>6} events: peak Python allocations during the run {peak / 2**20:.1f} MiB")


def summary_of(sessions: Any, report_id: uuid.UUID) -> dict[str, Any]:
    with sessions() as session:
        report = session.get(ShadowReport, report_id)
        if report is None or report.summary is None:
            sys.exit(f"report {report_id} did not complete")
        return dict(report.summary)


if __name__ == "__main__":
    main()
