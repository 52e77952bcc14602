"""Shadow runs (`POST /workflows/{id}/shadow`): recorded events replayed through a
candidate version, compared with what the recorded executions did.

The events are recorded by the tests themselves: sent through the API, their steps
run through the real step task code on real Postgres, approvals decided through the
approvals API. The shadow run must then report exactly the differences the
candidate's change causes, perform nothing (a sink that must receive nothing, the
records and notifications tables unchanged), and be stored, paged and audited.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from tests.integration.engine.conftest import (
    API,
    BROKER_URL,
    create_workflow,
    drive,
    send_event,
)
from tests.integration.engine.sinks import HttpSink
from tests.support import Caller, create_api_key, register, unique

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def order_triage() -> dict[str, Any]:
    body = json.loads((EXAMPLES / "order-triage.json").read_text())
    return {**body, "workflow_id": unique("triage")}


def with_threshold(workflow: dict[str, Any], threshold: int) -> dict[str, Any]:
    """The candidate: version 2.0.0, large orders from `threshold` on."""
    candidate = copy.deepcopy(workflow)
    candidate["version"] = "2.0.0"
    (check,) = [s for s in candidate["definition"]["steps"] if s["id"] == "check_total"]
    check["condition"]["value"] = threshold
    return candidate


def decide(caller: Caller, execution_id: str, verb: str) -> None:
    listed = caller.get(f"{API}/approvals?execution_id={execution_id}&status=pending")
    assert listed.status_code == 200, listed.json
    (approval,) = listed.json["approvals"]
    decided = caller.post(f"{API}/approvals/{approval['id']}/{verb}", {"reason": "test"})
    assert decided.status_code == 200, decided.json


def shadow(caller: Caller, workflow_row: dict[str, Any], body: dict[str, Any]) -> Any:
    return caller.post(f"{API}/workflows/{workflow_row['id']}/shadow", body)


@pytest.fixture
def recorded(rt: Any, app: Any) -> dict[str, Any]:
    """order-triage deployed in an organization of its own, five orders recorded:
    one small, two between 500 and 1000, one large approved, one large rejected;
    and an event of another type."""
    owner = register(app.test_client())
    workflow = order_triage()
    row = create_workflow(owner, workflow)
    since = datetime.now(UTC) - timedelta(seconds=1)
    events: dict[int, str] = {}
    executions: dict[int, str] = {}
    for total in (50, 600, 800, 1500, 2500):
        sent = send_event(owner, "order.placed", {"order": {"id": f"o-{total}", "total": total}})
        events[total] = sent["id"]
        (executions[total],) = sent["execution_ids"]
    send_event(owner, "order.cancelled", {"order": {"id": "o-x", "total": 700}})
    drive(rt)
    decide(owner, executions[1500], "approve")
    decide(owner, executions[2500], "reject")
    drive(rt)
    return {
        "owner": owner,
        "workflow": workflow,
        "row": row,
        "since": since.isoformat(),
        "events": events,
        "executions": executions,
    }


def test_the_unchanged_version_replays_every_recorded_event_the_same(
    recorded: dict[str, Any],
) -> None:
    response = shadow(
        recorded["owner"],
        recorded["row"],
        {"candidate": recorded["workflow"], "since": recorded["since"]},
    )
    assert response.status_code == 200, response.json
    report = response.json
    assert report["status"] == "completed"
    assert report["summary"] == {
        "events_replayed": 5,
        "same_result": 5,
        "different_result": 0,
        "differences": 0,
        "unresolved": 0,
        "by_change": [],
        "steps_newly_reached": [],
        "steps_no_longer_reached": [],
    }
    assert report["differences"] == [] and report["total"] == 0


def test_a_lower_threshold_reports_exactly_the_orders_it_would_send_to_review(
    recorded: dict[str, Any],
) -> None:
    response = shadow(
        recorded["owner"],
        recorded["row"],
        {"candidate": with_threshold(recorded["workflow"], 500), "since": recorded["since"]},
    )
    assert response.status_code == 200, response.json
    report = response.json
    assert report["summary"] == {
        "events_replayed": 5,
        "same_result": 3,
        "different_result": 2,
        "differences": 2,
        "unresolved": 2,
        "by_change": [{"change": "allowed → waiting", "count": 2}],
        "steps_newly_reached": [{"step_id": "manager_review", "count": 2}],
        "steps_no_longer_reached": [{"step_id": "accept", "count": 2}],
    }
    events, executions = recorded["events"], recorded["executions"]
    by_event = {d["event_id"]: d for d in report["differences"]}
    assert set(by_event) == {events[600], events[800]}
    for total in (600, 800):
        difference = by_event[events[total]]
        assert difference["recorded_execution_id"] == executions[total]
        assert difference["recorded_version"] == "1.0.0"
        assert (difference["from"], difference["to"]) == ("allowed", "waiting")
        assert difference["path_from"] == ["check_total", "accept"]
        assert difference["path_to"] == ["check_total", "manager_review"]
        assert difference["decisions_changed"] == [
            {"step_id": "check_total", "from": False, "to": True}
        ]
        assert (difference["approvals_from"], difference["approvals_to"]) == (
            [],
            ["manager_review"],
        )
        # Nobody decided an approval the recorded run never asked for.
        assert difference["unresolved"]["kind"] == "approval"
        assert difference["unresolved"]["step_id"] == "manager_review"
        assert [w["kind"] for w in difference["would"]] == ["approval"]


def test_recorded_approval_decisions_carry_over_and_a_higher_threshold_skips_them(
    recorded: dict[str, Any],
) -> None:
    response = shadow(
        recorded["owner"],
        recorded["row"],
        {"candidate": with_threshold(recorded["workflow"], 2000), "since": recorded["since"]},
    )
    assert response.status_code == 200, response.json
    summary = response.json["summary"]
    # 1500 is now accepted at once (it was approved: same result, other path); 2500
    # still asks, and its recorded rejection answers it: the same.
    assert summary["same_result"] == 5
    assert summary["differences"] == 1
    assert summary["unresolved"] == 0
    (difference,) = response.json["differences"]
    assert difference["event_id"] == recorded["events"][1500]
    assert difference["path_from"] == ["check_total", "manager_review", "accept"]
    assert difference["path_to"] == ["check_total", "accept"]
    assert difference["approvals_from"] == ["manager_review"]
    assert difference["approvals_to"] == []


def test_a_wider_trigger_replays_the_events_it_would_newly_start(recorded: dict[str, Any]) -> None:
    candidate = copy.deepcopy(recorded["workflow"])
    candidate["version"] = "2.0.0"
    candidate["definition"]["trigger"]["event"] = "order.*"
    response = shadow(
        recorded["owner"], recorded["row"], {"candidate": candidate, "since": recorded["since"]}
    )
    assert response.status_code == 200, response.json
    summary = response.json["summary"]
    assert (summary["events_replayed"], summary["same_result"]) == (6, 5)
    assert summary["by_change"] == [{"change": "not started → allowed", "count": 1}]
    (difference,) = response.json["differences"]
    assert difference["event_type"] == "order.cancelled"
    assert difference["recorded_execution_id"] is None
    assert difference["path_to"] == ["check_total", "accept"]


def test_a_new_wait_is_answered_by_the_matching_event_recorded_later(
    recorded: dict[str, Any],
) -> None:
    """The candidate waits for the order's payment before accepting a small order: the
    orders paid later (o-50, o-600) take the same result by another path; o-800, never
    paid and its hour not over, is unresolved."""
    owner, events = recorded["owner"], recorded["events"]
    for order_id in ("o-50", "o-600", "o-9999"):
        send_event(owner, "order.paid", {"order": {"id": order_id}})
    candidate = copy.deepcopy(recorded["workflow"])
    candidate["version"] = "2.0.0"
    steps = candidate["definition"]["steps"]
    steps[0]["on_false"] = "paid"
    steps.append(
        {
            "id": "paid",
            "type": "wait",
            "wait": {
                "event": "order.paid",
                "match": {"field": "order.id", "operator": "eq", "value": "{{ order.id }}"},
                "timeout": "1h",
            },
            "next": "accept",
            "on_timeout": "refuse",
        }
    )
    response = shadow(owner, recorded["row"], {"candidate": candidate, "since": recorded["since"]})
    assert response.status_code == 200, response.json
    summary = response.json["summary"]
    assert (summary["same_result"], summary["different_result"], summary["unresolved"]) == (4, 1, 1)
    assert summary["by_change"] == [{"change": "allowed → waiting", "count": 1}]
    assert summary["steps_newly_reached"] == [{"step_id": "paid", "count": 3}]
    by_event = {d["event_id"]: d for d in response.json["differences"]}
    assert set(by_event) == {events[50], events[600], events[800]}
    for total in (50, 600):
        assert by_event[events[total]]["path_to"] == ["check_total", "paid", "accept"]
        assert by_event[events[total]]["to"] == "allowed"
    assert by_event[events[800]]["unresolved"]["step_id"] == "paid"


def test_a_report_is_stored_paged_and_audited(recorded: dict[str, Any]) -> None:
    owner, row = recorded["owner"], recorded["row"]
    candidate = with_threshold(recorded["workflow"], 500)
    events = recorded["events"]
    response = shadow(
        owner, row, {"candidate": candidate, "event_ids": [events[600], events[800], events[50]]}
    )
    assert response.status_code == 200, response.json
    assert response.json["summary"]["events_replayed"] == 3
    report_id = response.json["id"]
    first = owner.get(f"{API}/workflows/{row['id']}/shadow/{report_id}?page=1&page_size=1")
    second = owner.get(f"{API}/workflows/{row['id']}/shadow/{report_id}?page=2&page_size=1")
    assert first.status_code == second.status_code == 200
    assert first.json["total"] == 2
    paged = {first.json["differences"][0]["event_id"], second.json["differences"][0]["event_id"]}
    assert paged == {events[600], events[800]}
    audit = owner.get(f"{API}/audit-logs?action=workflow_shadow_run")
    assert audit.status_code == 200, audit.json
    (entry,) = [e for e in audit.json["audit_logs"] if e["changes"]["report_id"] == report_id]
    assert entry["changes"]["candidate_version"] == "2.0.0"
    other = register(owner.client)
    assert other.get(f"{API}/workflows/{row['id']}/shadow/{report_id}").status_code == 404


def test_a_long_selection_is_queued_for_a_worker_and_read_by_id(
    rt: Any, recorded: dict[str, Any]
) -> None:
    from tasks import shadow as shadow_service

    owner, row = recorded["owner"], recorded["row"]
    candidate = with_threshold(recorded["workflow"], 500)
    response = shadow(owner, row, {"candidate": candidate, "limit": 10_000, "background": True})
    assert response.status_code == 202, response.json
    assert response.json["status"] == "pending" and response.json["summary"] is None
    report_id = response.json["id"]
    assert queued_shadow_runs(report_id) == 1
    # The worker's task body, run here as the worker would (no worker consumes this broker).
    from tasks.jobs import run_shadow

    assert run_shadow(report_id) == 5
    read = owner.get(f"{API}/workflows/{row['id']}/shadow/{report_id}")
    assert read.status_code == 200, read.json
    assert read.json["status"] == "completed"
    assert read.json["summary"]["differences"] == 2
    # A redelivered message leaves a finished report alone.
    assert shadow_service.run_report(rt.session_factory, uuid.UUID(report_id), rt.renderer) == 0


def queued_shadow_runs(report_id: str) -> int:
    """`workflows.run_shadow` messages for this report waiting in the test broker."""
    from tasks.shadow import RUN_SHADOW

    broker = redis.Redis.from_url(BROKER_URL)
    try:
        messages = [json.loads(raw) for raw in broker.lrange("workflows", 0, -1)]
    finally:
        broker.close()
    return sum(
        1
        for message in messages
        if message["headers"].get("task") == RUN_SHADOW
        and report_id in str(message["headers"].get("kwargsrepr"))
    )


def background_report(recorded: dict[str, Any]) -> tuple[Caller, dict[str, Any], str]:
    """A report of 50 events left to a worker: the owner, the workflow row, its id."""
    owner, row = recorded["owner"], recorded["row"]
    body = {"candidate": with_threshold(recorded["workflow"], 500), "limit": 50, "background": True}
    return owner, row, str(shadow(owner, row, body).json["id"])


def test_a_run_superseded_by_a_redelivered_message_stops_without_touching_the_report(
    rt: Any, recorded: dict[str, Any]
) -> None:
    from engine.templating import TemplateRenderer
    from tasks import shadow as shadow_service
    from tasks.jobs import run_shadow

    owner, row, report_id = background_report(recorded)
    # A first delivery claims the report and is overtaken (a worker seen as lost) ...
    first = shadow_service._claim(rt.session_factory, uuid.UUID(report_id))
    assert first is not None
    # ... by a second delivery, which runs it to the end.
    assert run_shadow(report_id) == 5
    with pytest.raises(shadow_service.Superseded):
        shadow_service._replay(rt.session_factory, first, TemplateRenderer(), datetime.now(UTC))
    read = owner.get(f"{API}/workflows/{row['id']}/shadow/{report_id}")
    assert read.json["status"] == "completed"
    assert read.json["summary"]["differences"] == read.json["total"] == 2


@pytest.fixture
def silent_sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


def test_a_shadow_run_performs_nothing(
    rt: Any, app: Any, http_sink: HttpSink, silent_sink: HttpSink
) -> None:
    from models.business import Notification, Record

    owner = register(app.test_client())
    event_type = unique("ping")
    current = {
        "workflow_id": unique("effects"),
        "version": "1",
        "name": "Quiet",
        "definition": {
            "trigger": {"type": "event", "event": event_type},
            "steps": [
                {
                    "id": "a",
                    "type": "execute",
                    "execute": [{"type": "set", "values": {"x": 1}}],
                    "next": "b",
                },
                {"id": "b", "type": "action", "action": {"type": "allow"}},
            ],
        },
    }
    row = create_workflow(owner, current)
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    for n in range(3):
        send_event(owner, event_type, {"n": n, "customer": {"email": "c@example.com"}})
    drive(rt)
    loud = copy.deepcopy(current)
    loud["version"] = "2"
    loud["definition"]["steps"] = [
        {
            "id": "a",
            "type": "execute",
            "execute": [
                {
                    "type": "http_request",
                    "url": f"{silent_sink.url}/hook/{{{{ n }}}}",
                    "method": "POST",
                    "body": {"n": "{{ n }}"},
                },
                {
                    "type": "create_record",
                    "entity": "shadow_probe",
                    "entity_id": "{{ n }}",
                    "data": {"n": "{{ n }}"},
                },
                {
                    "type": "notify",
                    "recipients": ["email:{{ customer.email }}"],
                    "subject": "s",
                    "message": "m",
                },
                {"type": "webhook", "url": f"{silent_sink.url}/webhook", "body": {"n": "{{ n }}"}},
            ],
            "next": "b",
        },
        {"id": "b", "type": "action", "action": {"type": "block", "reason": "shadow"}},
    ]

    def counts() -> tuple[int, int]:
        with rt.session_factory() as session:
            return (
                session.scalar(select(func.count()).select_from(Record)) or 0,
                session.scalar(select(func.count()).select_from(Notification)) or 0,
            )

    before = counts()
    sink_calls_before = len(http_sink.received)
    response = shadow(owner, row, {"candidate": loud, "since": since})
    assert response.status_code == 200, response.json
    drive(rt)  # anything the shadow run might have queued would run now
    assert response.json["summary"]["by_change"] == [{"change": "allowed → blocked", "count": 3}]
    assert silent_sink.received == []
    assert len(http_sink.received) == sink_calls_before
    assert counts() == before
    for difference in response.json["differences"]:
        kinds = [w["kind"] for w in difference["would"]]
        assert kinds == ["http_request", "create_record", "notify", "http_request"], kinds
        (call,) = [
            w
            for w in difference["would"]
            if w.get("url", "").startswith(f"{silent_sink.url}/hook/")
        ]
        assert call["method"] == "POST"


def test_a_replay_takes_the_resources_the_recorded_run_loaded(
    rt: Any, app: Any, silent_sink: HttpSink
) -> None:
    """A candidate that loads `context.load` resources sees what the recorded run loaded
    (the unchanged version replays the same), and fetches nothing: a resource the
    record lacks is listed as a would-be fetch."""
    from tests.integration.engine.test_enrichment import enriching_runtime, loading

    owner = register(app.test_client())
    silent_sink.respond("/enrich/customer/profile", body={"tier": "gold"})
    silent_sink.respond("/enrich/order/details", status=404)
    event_type = f"enrich.{unique('e')}"
    workflow = loading(event_type)
    row = create_workflow(owner, workflow)
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    send_event(owner, event_type, {"customer": {"id": "c-1"}})
    enriched = enriching_runtime(rt, f"{silent_sink.url}/enrich")
    try:
        drive(enriched)
    finally:
        enriched.dispose()
    fetched = len(silent_sink.received)
    assert fetched == 2  # the recorded run loaded its profile (and missed the order)

    same = shadow(owner, row, {"candidate": workflow, "since": since})
    assert same.status_code == 200, same.json
    assert (same.json["summary"]["same_result"], same.json["summary"]["differences"]) == (1, 0)

    candidate = copy.deepcopy(workflow)
    candidate["version"] = "2"
    candidate["definition"]["context"]["load"].append("customer.history")
    (vip,) = [s for s in candidate["definition"]["steps"] if s["id"] == "vip"]
    vip["condition"]["value"] = "platinum"
    changed = shadow(owner, row, {"candidate": candidate, "since": since})
    assert changed.status_code == 200, changed.json
    assert changed.json["summary"]["by_change"] == [{"change": "allowed → blocked", "count": 1}]
    (difference,) = changed.json["differences"]
    loads = [w["resource"] for w in difference["would"] if w["kind"] == "load"]
    assert loads == ["order.details", "customer.history"]
    assert len(silent_sink.received) == fetched


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "candidate"),
        ({"candidate": {"workflow_id": "x"}}, "_schema"),
        ({"candidate": "nope", "limit": 5}, "candidate"),
        ({"candidate": {"steps": []}, "limit": 5}, None),
        ({"candidate": None, "limit": 0}, "limit"),
        (
            {"candidate": {}, "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            "until",
        ),
        ({"candidate": {}, "event_ids": ["not-a-uuid"]}, "event_ids"),
    ],
)
def test_bad_requests_are_422(
    recorded: dict[str, Any], body: dict[str, Any], field: str | None
) -> None:
    response = shadow(recorded["owner"], recorded["row"], body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == 422
    if field is not None:
        assert field in json.dumps(response.json["errors"]), response.json


def test_another_workflows_candidate_is_refused(recorded: dict[str, Any]) -> None:
    other = {**with_threshold(recorded["workflow"], 500), "workflow_id": "someone-else"}
    response = shadow(recorded["owner"], recorded["row"], {"candidate": other, "limit": 5})
    assert response.status_code == 422, response.json
    assert "candidate.workflow_id" in response.json["errors"]


def test_it_needs_both_read_permissions(recorded: dict[str, Any]) -> None:
    owner, row = recorded["owner"], recorded["row"]
    body = {"candidate": recorded["workflow"], "limit": 5}
    workflows_only = create_api_key(owner, ["workflow:read"])
    executions_only = create_api_key(owner, ["execution:read"])
    both = create_api_key(owner, ["workflow:read", "execution:read"])
    assert workflows_only.post(f"{API}/workflows/{row['id']}/shadow", body).status_code == 403
    assert executions_only.post(f"{API}/workflows/{row['id']}/shadow", body).status_code == 403
    assert both.post(f"{API}/workflows/{row['id']}/shadow", body).status_code == 200
    missing = f"{API}/workflows/{row['id']}/shadow/00000000-0000-0000-0000-000000000000"
    assert both.get(missing).status_code == 404


def _age(rt: Any, report_id: str, **columns: Any) -> None:
    """Set a report's bookkeeping as a run that stopped long ago would have left it."""
    from models.shadow import ShadowReport

    with rt.session_factory() as session, session.begin():
        report = session.get(ShadowReport, uuid.UUID(report_id))
        for name, value in columns.items():
            setattr(report, name, value)


def _requeued(rt: Any, report_id: str) -> bool:
    """One sweep of stalled reports (of every test's organization): whether it queued
    this report again."""
    from tasks import shadow as shadow_service

    rt.publisher.sent.clear()
    shadow_service.requeue_stalled(rt.session_factory, rt.publisher.send, datetime.now(UTC))
    return (shadow_service.RUN_SHADOW, {"report_id": report_id}) in rt.publisher.sent


def test_a_report_whose_run_stopped_is_queued_again_and_then_completes(
    rt: Any, recorded: dict[str, Any]
) -> None:
    from tasks import shadow as shadow_service
    from tasks.jobs import run_shadow

    owner, row, report_id = background_report(recorded)
    # A worker claimed it and died; its message is gone (a broker that lost its queue).
    assert shadow_service._claim(rt.session_factory, uuid.UUID(report_id)) is not None
    assert not _requeued(rt, report_id)  # a live run is left alone
    _age(
        rt, report_id, heartbeat_at=datetime.now(UTC) - shadow_service.STALL - timedelta(seconds=1)
    )

    assert _requeued(rt, report_id)
    assert not _requeued(rt, report_id)  # queued once, not at every sweep
    assert run_shadow(report_id) == 5
    read = owner.get(f"{API}/workflows/{row['id']}/shadow/{report_id}")
    assert read.json["status"] == "completed"
    assert read.json["summary"]["differences"] == read.json["total"] == 2


def test_a_pending_report_whose_message_was_lost_is_queued_again(
    rt: Any, recorded: dict[str, Any]
) -> None:
    from tasks import shadow as shadow_service

    *_, report_id = background_report(recorded)
    assert not _requeued(rt, report_id)
    _age(rt, report_id, created_at=datetime.now(UTC) - shadow_service.STALL - timedelta(seconds=1))
    assert _requeued(rt, report_id)


def test_a_report_whose_runs_keep_stopping_fails(rt: Any, recorded: dict[str, Any]) -> None:
    from tasks import shadow as shadow_service

    owner, row, report_id = background_report(recorded)
    silent_since = datetime.now(UTC) - shadow_service.STALL - timedelta(seconds=1)
    for attempt in range(1, shadow_service.MAX_ATTEMPTS + 1):
        assert shadow_service._claim(rt.session_factory, uuid.UUID(report_id)) is not None
        _age(rt, report_id, heartbeat_at=silent_since)
        assert _requeued(rt, report_id) == (attempt < shadow_service.MAX_ATTEMPTS)
    read = owner.get(f"{API}/workflows/{row['id']}/shadow/{report_id}")
    assert read.json["status"] == "failed"
    assert "stopped without finishing 3 times" in read.json["error_message"]
