"""The durable-wait jobs, run in-process: approval expiry, the resumer, the scheduler."""

from __future__ import annotations

import importlib
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.integration.approvals.helpers import an_hour_ago, set_column, waiting_approval
from tests.integration.engine.conftest import (
    API,
    create_workflow,
    drive,
    execution,
    send_event,
)
from tests.support import Caller, unique

pytestmark = pytest.mark.integration


# --- approval expiry ------------------------------------------------------------------------
def test_an_expired_approval_blocks_the_execution_with_a_timeout(admin: Caller, rt: Any) -> None:
    from tasks.approvals import expire_due

    execution_id, approval = waiting_approval(admin, rt)
    set_column(rt, "approvals", "expires_at", approval["id"], an_hour_ago())
    assert expire_due(rt) >= 1
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"], body["error_type"]) == (
        "completed",
        "blocked",
        "timeout",
    )
    assert body["context"]["approvals"]["gate"]["status"] == "expired"
    read = admin.get(f"{API}/approvals/{approval['id']}").json
    assert read["status"] == "expired"
    assert read["decided_at"] is not None
    # Expired: nobody can decide it any more, and a second run changes nothing.
    assert admin.post(f"{API}/approvals/{approval['id']}/approve", {}).status_code == 409
    expire_due(rt)
    assert execution(admin, execution_id)["status"] == "completed"


def test_an_expired_approval_goes_to_on_timeout(admin: Caller, rt: Any) -> None:
    from tasks.approvals import expire_due

    execution_id, approval = waiting_approval(admin, rt, on_timeout="late")
    set_column(rt, "approvals", "expires_at", approval["id"], an_hour_ago())
    expire_due(rt)
    drive(rt)
    body = execution(admin, execution_id)
    assert body["status"] == "completed", body
    assert body["result"] == "allowed"
    steps = admin.get(f"{API}/executions/{execution_id}/trace").json["steps"]
    assert "late" in [step["step_id"] for step in steps]


def test_an_unexpired_approval_is_left_alone(admin: Caller, rt: Any) -> None:
    from tasks.approvals import expire_due

    execution_id, approval = waiting_approval(admin, rt)
    later = datetime.now(UTC) + timedelta(hours=1)
    set_column(rt, "approvals", "expires_at", approval["id"], later)
    expire_due(rt)
    assert execution(admin, execution_id)["status"] == "waiting"
    assert admin.get(f"{API}/approvals/{approval['id']}").json["status"] == "pending"


# --- resumer: timer waits and event-wait timeouts -------------------------------------------
def _wait_workflow(caller: Caller, wait_step: dict[str, Any]) -> str:
    event = f"wait.{unique('e')}"
    steps: list[dict[str, Any]] = [
        {"id": "hold", "type": "wait", **wait_step},
        {"id": "done", "type": "action", "action": {"type": "allow"}},
    ]
    if "on_timeout" in wait_step:
        steps.append({"id": "late", "type": "action", "action": {"type": "block"}})
    create_workflow(
        caller,
        {
            "workflow_id": unique("wait"),
            "version": "1.0.0",
            "name": "Wait",
            "definition": {
                "trigger": {"type": "event", "event": event},
                "steps": steps,
            },
        },
    )
    return event


def _wait_id(rt: Any, execution_id: str) -> str:
    from models.execution import Wait

    with rt.session_factory() as session:
        return str(
            session.scalars(
                select(Wait.id).where(Wait.execution_id == uuid.UUID(execution_id))
            ).one()
        )


def test_a_timer_wait_resumes_once_due(admin: Caller, rt: Any) -> None:
    from tasks.timers import resume_due_waits

    event = _wait_workflow(admin, {"wait": {"duration": "1h"}, "next": "done"})
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    drive(rt)
    assert execution(admin, execution_id)["status"] == "waiting"
    resume_due_waits(rt)
    assert execution(admin, execution_id)["status"] == "waiting"  # not due yet

    set_column(rt, "waits", "due_at", _wait_id(rt, execution_id), an_hour_ago())
    assert resume_due_waits(rt) >= 1
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    assert resume_due_waits(rt) == 0 or execution(admin, execution_id) == body


def test_an_event_wait_that_times_out_goes_to_on_timeout(admin: Caller, rt: Any) -> None:
    from tasks.timers import resume_due_waits

    other = f"never.{unique('e')}"
    event = _wait_workflow(
        admin, {"wait": {"event": other, "timeout": "1h"}, "on_timeout": "late", "next": "done"}
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    drive(rt)
    set_column(rt, "waits", "due_at", _wait_id(rt, execution_id), an_hour_ago())
    resume_due_waits(rt)
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    # The event arriving afterwards wakes nothing.
    send_event(admin, other, {})
    drive(rt)
    assert execution(admin, execution_id)["result"] == "blocked"


def test_an_event_wait_without_on_timeout_fails_with_timeout(admin: Caller, rt: Any) -> None:
    from tasks.timers import resume_due_waits

    event = _wait_workflow(
        admin, {"wait": {"event": f"never.{unique('e')}", "timeout": "1h"}, "next": "done"}
    )
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    drive(rt)
    set_column(rt, "waits", "due_at", _wait_id(rt, execution_id), an_hour_ago())
    resume_due_waits(rt)
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["error_type"]) == ("failed", "timeout")


# --- scheduler ------------------------------------------------------------------------------
def _schedule(admin: Caller, rt: Any, due: datetime) -> tuple[uuid.UUID, str]:
    from models.workflow import Schedule

    slug = unique("cron")
    workflow = create_workflow(
        admin,
        {
            "workflow_id": slug,
            "version": "1.0.0",
            "name": "Nightly",
            "definition": {
                "trigger": {"type": "event", "event": f"cron.{unique('e')}"},
                "steps": [{"id": "done", "type": "action", "action": {"type": "allow"}}],
            },
        },
    )
    with rt.session_factory() as session:
        schedule = Schedule(
            organization_id=uuid.UUID(admin.organization_id),
            workflow_row_id=uuid.UUID(workflow["id"]),
            workflow_id=slug,
            cron="*/5 * * * *",
            timezone="UTC",
            payload={"report": "nightly"},
            enabled=True,
            next_run_at=due,
        )
        session.add(schedule)
        session.commit()
        return schedule.id, slug


def _runs(rt: Any, slug: str) -> list[Any]:
    from models.execution import Execution

    with rt.session_factory() as session:
        return list(
            session.scalars(
                select(Execution).where(
                    Execution.workflow_id == slug, Execution.trigger_type == "schedule"
                )
            )
        )


def test_racing_schedulers_fire_a_due_schedule_once(admin: Caller, rt: Any) -> None:
    from tasks.scheduler import fire_due_schedules

    _, slug = _schedule(admin, rt, datetime.now(UTC) - timedelta(minutes=1))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            fire_due_schedules(rt)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    [run_] = _runs(rt, slug)
    assert run_.trigger_payload == {"report": "nightly"}
    fire_due_schedules(rt)
    assert len(_runs(rt, slug)) == 1
    drive(rt)
    assert execution(admin, str(run_.id))["result"] == "allowed"


def test_a_held_schedule_row_is_skipped_not_fired_twice(admin: Caller, rt: Any) -> None:
    from models.schedule_repository import claim_due_schedules
    from tasks.scheduler import fire_due_schedules

    schedule_id, slug = _schedule(admin, rt, datetime.now(UTC) - timedelta(minutes=1))
    with rt.session_factory() as holder:
        claimed = claim_due_schedules(holder, datetime.now(UTC), 1000)
        assert schedule_id in [s.id for s in claimed]
        fire_due_schedules(rt)  # another replica, while the row is locked
        assert _runs(rt, slug) == []
        holder.rollback()
    fire_due_schedules(rt)
    assert len(_runs(rt, slug)) == 1


def test_downtime_fires_one_catch_up_run(admin: Caller, rt: Any) -> None:
    from models.workflow import Schedule
    from tasks.scheduler import fire_due_schedules

    schedule_id, slug = _schedule(admin, rt, datetime.now(UTC) - timedelta(hours=3))
    fire_due_schedules(rt)
    assert len(_runs(rt, slug)) == 1
    with rt.session_factory() as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None
        assert schedule.next_run_at is not None
        assert schedule.next_run_at > datetime.now(UTC)
        assert schedule.last_run_at is not None
    fire_due_schedules(rt)
    assert len(_runs(rt, slug)) == 1


def test_a_schedule_without_an_enabled_version_is_skipped(admin: Caller, rt: Any) -> None:
    from tasks.scheduler import fire_due_schedules

    schedule_id, slug = _schedule(admin, rt, datetime.now(UTC) - timedelta(minutes=1))
    with rt.session_factory() as session:
        session.execute(
            text("UPDATE workflows SET enabled = false WHERE workflow_id = :slug"), {"slug": slug}
        )
        session.commit()
    fire_due_schedules(rt)
    assert _runs(rt, slug) == []
    with rt.session_factory() as session:
        next_run = session.execute(
            text("SELECT next_run_at FROM schedules WHERE id = :id"), {"id": schedule_id}
        ).scalar_one()
    assert next_run > datetime.now(UTC)


def test_the_beat_schedule_runs_every_durable_job() -> None:
    from models.config import load_settings
    from workers.app import TASK_MODULES, celery_config

    settings = load_settings(
        environ={}, overrides={"job_interval_seconds": {"approval_expiration": 7}}
    )
    schedule = celery_config(settings)["beat_schedule"]
    tasks = {entry["task"]: entry["schedule"] for entry in schedule.values()}
    assert tasks["workflows.expire_approvals"] == 7.0
    assert {"workflows.resume_due", "workflows.fire_schedules"} <= set(tasks)
    # Every scheduled job is a task the worker's modules register.
    for module in TASK_MODULES:
        importlib.import_module(module)
    from celery import current_app

    assert set(tasks) <= set(current_app.tasks)
