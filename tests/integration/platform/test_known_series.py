"""The /metrics of the API and of a worker host: an enabled workflow's series read 0
before its first execution."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from models.enabled_workflows import EnabledWorkflow, enabled_workflows
from monitoring.baseline import KnownWorkflow
from tests.support import API, register, unique


def _scrape(client: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def _workflow(slug: str, event: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "workflow_id": slug,
        "version": "1",
        "name": slug,
        "enabled": True,
        "definition": {"trigger": {"type": "event", "event": event}, "steps": steps},
    }


def test_an_enabled_workflow_has_zero_series_from_the_first_scrape(client: Any) -> None:
    caller = register(client)
    plain, asks = unique("plain"), unique("asks")
    allow = [{"id": "ok", "type": "action", "action": {"type": "allow"}}]
    approval = [
        {
            "id": "ask",
            "type": "action",
            "action": {"type": "require_approval", "reason": "check"},
            "metadata": {"approver_role": "finance"},
        }
    ]
    for body in (_workflow(plain, f"{plain}.go", allow), _workflow(asks, f"{asks}.go", approval)):
        response = caller.post(f"{API}/workflows", body)
        assert response.status_code == 201, response.json

    found = _scrape(client)

    def value(name: str, **labels: str) -> float | None:
        return found.get((name, frozenset(labels.items())))

    failed = {"workflow_id": plain, "status": "failed", "trigger_type": "event"}
    assert value("workflow_executions_total", **failed) == 0
    assert value("workflow_executions_total", **{**failed, "trigger_type": "manual"}) == 0
    assert value("workflow_execution_duration_seconds_count", workflow_id=plain) == 0
    assert value("events_received_total", event_type=f"{plain}.go") == 0
    assert value("approvals_total", status="approved", workflow_id=asks) == 0
    assert value("approvals_duration_seconds_count", workflow_id=asks) == 0
    assert value("approvals_total", status="approved", workflow_id=plain) is None


def test_enabled_workflows_name_their_approvals_and_retried_steps(
    client: Any, database_url: str
) -> None:
    caller = register(client)
    slug = unique("retries")
    steps = [
        {
            "id": "call",
            "type": "execute",
            "execute": [{"type": "log", "message": "hi"}],
            "retry": {"max_attempts": 3, "backoff": "fixed", "initial_interval": "1s"},
            "next": "ask",
        },
        {
            "id": "ask",
            "type": "action",
            "action": {"type": "require_approval", "reason": "check"},
            "metadata": {"approver_role": "finance"},
        },
    ]
    response = caller.post(f"{API}/workflows", _workflow(slug, f"{slug}.go", steps))
    assert response.status_code == 201, response.json
    db_engine = create_engine(database_url)
    try:
        with db_engine.connect() as connection:
            found = {row.slug: row for row in enabled_workflows(connection)}
    finally:
        db_engine.dispose()
    assert found[slug] == EnabledWorkflow(slug, "event", f"{slug}.go", True, ("call",))


def test_the_worker_hosts_reader_sees_enabled_workflows_under_a_statement_timeout(
    client: Any, database_url: str
) -> None:
    from workers.signals import _KnownLabelsReader

    caller = register(client)
    slug = unique("worker_known")
    allow = [{"id": "ok", "type": "action", "action": {"type": "allow"}}]
    response = caller.post(f"{API}/workflows", _workflow(slug, f"{slug}.go", allow))
    assert response.status_code == 201, response.json
    reader = _KnownLabelsReader(database_url)
    try:
        workflows = {workflow.slug: workflow for workflow in reader().workflows}
        assert workflows[slug] == KnownWorkflow(slug, "event", f"{slug}.go", False, ())
        # The reader's engine is in autocommit, its timeout set when it connects.
        assert reader._db_engine is not None
        with reader._db_engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "2s"
            with pytest.raises(OperationalError, match="statement timeout"):
                connection.execute(text("SELECT pg_sleep(3)"))
    finally:
        if reader._db_engine is not None:
            reader._db_engine.dispose()


def test_a_chat_refused_because_ai_is_not_configured_is_counted(client: Any) -> None:
    caller = register(client)
    labels = {"model": "none", "status": "unavailable"}
    before = _scrape(client).get(("ai_requests_total", frozenset(labels.items())))
    assert before is not None  # 0 before any request

    response = caller.post(f"{API}/ai/chat", {"messages": [{"role": "user", "content": "hi"}]})

    assert response.status_code == 503
    after = _scrape(client)[("ai_requests_total", frozenset(labels.items()))]
    assert after == before + 1
