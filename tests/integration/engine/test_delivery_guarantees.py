"""At-least-once delivery without duplicated state or repeated effects."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.integration.engine.conftest import (
    create_workflow,
    drive,
    execution,
    send_event,
    set_then_allow,
    trace,
)
from tests.support import unique


def http_workflow(url: str, **retry: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": "call",
        "type": "execute",
        "execute": [
            {"type": "http_request", "url": url, "method": "POST", "body": {"n": "{{ n }}"}}
        ],
        "next": "done",
    }
    if retry:
        step["retry"] = retry
    return {
        "workflow_id": unique("wf"),
        "version": "1",
        "name": "Call out",
        "definition": {
            "trigger": {"type": "event", "event": f"evt.{unique('t')}"},
            "steps": [step, {"id": "done", "type": "action", "action": {"type": "allow"}}],
        },
    }


def tickets_of(rt: Any, execution_id: str) -> list[Any]:
    from models.execution import DispatchOutbox
    from tasks.dispatch import Ticket

    with rt.session_factory() as session:
        rows = session.scalars(
            select(DispatchOutbox).where(DispatchOutbox.execution_id == execution_id)
        ).all()
        return [Ticket.from_row(row) for row in rows]


def run_ticket(rt: Any, ticket: Any) -> str:
    from tasks.dispatch import Ticket
    from tasks.steprun import run_step_message

    return run_step_message(rt, Ticket.parse(ticket.message()))


def count_step_runs(rt: Any, execution_id: str) -> int:
    from models.execution import StepRun

    with rt.session_factory() as session:
        return session.scalar(select(func.count()).where(StepRun.execution_id == execution_id)) or 0


def test_a_step_delivered_twice_changes_nothing_the_second_time(admin: Any, rt: Any) -> None:
    workflow = set_then_allow("dup.test")
    create_workflow(admin, workflow)
    [execution_id] = send_event(admin, "dup.test", {})["execution_ids"]
    [ticket] = tickets_of(rt, execution_id)
    assert run_ticket(rt, ticket) == "completed"
    before = execution(admin, execution_id)
    assert run_ticket(rt, ticket) == "duplicate"
    after = execution(admin, execution_id)
    assert after["current_step_id"] == before["current_step_id"] == "b"
    assert after["updated_at"] == before["updated_at"]
    assert count_step_runs(rt, execution_id) == 1
    drive(rt)
    assert execution(admin, execution_id)["status"] == "completed"
    assert count_step_runs(rt, execution_id) == 2


def test_a_stale_ticket_is_a_no_op(admin: Any, rt: Any) -> None:
    from dataclasses import replace

    create_workflow(
        admin,
        {
            **http_workflow("http://127.0.0.1:1/never"),
            "definition": {
                "trigger": {"type": "event", "event": "stale.test"},
                "steps": [{"id": "only", "type": "action", "action": {"type": "allow"}}],
            },
        },
    )
    [execution_id] = send_event(admin, "stale.test", {})["execution_ids"]
    [ticket] = tickets_of(rt, execution_id)
    # The same ticket but for an older attempt group (as after a manual retry).
    assert run_ticket(rt, replace(ticket, attempt_group=0)) == "stale_attempt_group"
    assert count_step_runs(rt, execution_id) == 0
    assert execution(admin, execution_id)["status"] == "pending"


def test_the_relay_publishes_unconsumed_tickets_and_rearms_them(admin: Any, rt: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from tasks.relay import relay_due_tickets
    from tests.integration.engine.conftest import RecordingPublisher

    create_workflow(
        admin,
        {
            **http_workflow("http://x"),
            "definition": {
                "trigger": {"type": "event", "event": "relay.test"},
                "steps": [{"id": "only", "type": "action", "action": {"type": "allow"}}],
            },
        },
    )
    [execution_id] = send_event(admin, "relay.test", {})["execution_ids"]
    publisher: Any = RecordingPublisher()
    now = datetime.now(UTC)
    relay_due_tickets(rt, publisher, now)
    assert [t for t in publisher.published if str(t.execution_id) == execution_id] == []
    later = now + timedelta(seconds=20)  # nobody consumed it within the grace period
    relay_due_tickets(rt, publisher, later)
    assert [str(t.execution_id) for t in publisher.published].count(execution_id) == 1
    relay_due_tickets(rt, publisher, later)  # re-armed: not again at once
    assert [str(t.execution_id) for t in publisher.published].count(execution_id) == 1
    drive(rt, include_delayed=True)
    assert execution(admin, execution_id)["status"] == "completed"
    relay_due_tickets(rt, publisher, later + timedelta(minutes=5))
    assert [str(t.execution_id) for t in publisher.published].count(execution_id) == 1  # consumed


def test_retries_with_backoff_create_one_step_run_per_attempt(
    admin: Any, rt: Any, http_sink: Any
) -> None:
    path = f"/flaky/{unique('p')}"
    http_sink.respond(path, status=503, times=2)
    body = http_workflow(
        http_sink.url + path, max_attempts=3, backoff="exponential", initial_interval="2s"
    )
    event = body["definition"]["trigger"]["event"]
    create_workflow(admin, body)
    [execution_id] = send_event(admin, event, {"n": 1})["execution_ids"]
    outcomes = drive(rt)
    assert outcomes == ["retry_scheduled"]
    runs = trace(admin, execution_id)["steps"]
    assert [(s["attempt"], s["status"]) for s in runs] == [(1, "failed"), (2, "pending")]
    assert runs[1]["due_at"] is not None
    drive(rt, include_delayed=True)
    steps = trace(admin, execution_id)["steps"]
    assert [(s["step_id"], s["attempt"], s["status"]) for s in steps] == [
        ("call", 1, "failed"),
        ("call", 2, "failed"),
        ("call", 3, "completed"),
        ("done", 1, "completed"),
    ]
    calls = http_sink.calls(path)
    assert len(calls) == 3
    # Every automatic retry carries the same idempotency key.
    keys = {call.headers["Idempotency-Key"] for call in calls}
    assert keys == {f"{execution_id}:call:1:0"}
    assert execution(admin, execution_id)["status"] == "completed"


def test_the_effects_ledger_prevents_repeating_a_succeeded_call(
    admin: Any, rt: Any, http_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.steprun as steprun

    path = f"/pay/{unique('p')}"
    body = http_workflow(http_sink.url + path)
    create_workflow(admin, body)
    [execution_id] = send_event(admin, body["definition"]["trigger"]["event"], {"n": 7})[
        "execution_ids"
    ]
    [ticket] = tickets_of(rt, execution_id)

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("worker died before recording the step")

    monkeypatch.setattr(steprun, "apply_outcome", crash)
    with pytest.raises(RuntimeError):
        run_ticket(rt, ticket)
    assert len(http_sink.calls(path)) == 1
    monkeypatch.undo()

    assert run_ticket(rt, ticket) == "completed"  # the redelivery takes the attempt over
    drive(rt)
    assert len(http_sink.calls(path)) == 1  # replayed from the ledger, not sent again
    steps = trace(admin, execution_id)["steps"]
    assert [(s["step_id"], s["status"]) for s in steps] == [
        ("call", "completed"),
        ("done", "completed"),
    ]
    assert steps[0]["output"]["results"][0]["status_code"] == 200
    assert execution(admin, execution_id)["status"] == "completed"


def test_a_live_attempt_is_left_to_its_owner(admin: Any, rt: Any, http_sink: Any) -> None:
    from sqlalchemy import text

    path = f"/busy/{unique('p')}"
    body = http_workflow(http_sink.url + path)
    create_workflow(admin, body)
    [execution_id] = send_event(admin, body["definition"]["trigger"]["event"], {"n": 1})[
        "execution_ids"
    ]
    [ticket] = tickets_of(rt, execution_id)
    from tasks.dispatch import Ticket

    key = Ticket.parse(ticket.message()).lock_key
    with rt.db_engine.connect() as owner:
        owner.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": key})
        assert run_ticket(rt, ticket) == "busy"
        owner.execute(text("SELECT pg_advisory_unlock_all()"))
        owner.commit()
    assert http_sink.calls(path) == []
    drive(rt)
    assert execution(admin, execution_id)["status"] == "completed"
