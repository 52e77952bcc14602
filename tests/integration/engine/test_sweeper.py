"""The stuck sweeper: lost dispatches are re-issued, overdue executions fail with a timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tests.integration.engine.conftest import (
    create_workflow,
    drive,
    execution,
    send_event,
    set_then_allow,
)
from tests.support import unique


def has_ticket(rt: Any, execution_id: str) -> bool:
    with rt.session_factory() as session:
        found = session.execute(
            text("SELECT 1 FROM dispatch_outbox WHERE execution_id = :id"), {"id": execution_id}
        ).first()
    return found is not None


def test_an_execution_that_lost_its_dispatch_is_redispatched(admin: Any, rt: Any) -> None:
    from tasks.sweeper import sweep

    event = f"sweep.{unique('e')}"
    create_workflow(admin, set_then_allow(event))
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    with rt.session_factory() as session:  # the ticket vanished (a bug, a manual delete)
        session.execute(
            text("DELETE FROM dispatch_outbox WHERE execution_id = :id"), {"id": execution_id}
        )
        session.commit()
    sweep(rt)
    assert not has_ticket(rt, execution_id)  # not stuck yet: its heartbeat is recent
    sweep(rt, datetime.now(UTC) + timedelta(minutes=10))
    assert has_ticket(rt, execution_id)
    drive(rt, include_delayed=True)  # its ticket is dated in that future
    assert execution(admin, execution_id)["status"] == "completed"


def test_an_execution_past_its_workflow_timeout_fails(admin: Any, rt: Any) -> None:
    from tasks.sweeper import sweep

    event = f"sweep.{unique('e')}"
    create_workflow(admin, set_then_allow(event, timeout="30s"))
    [execution_id] = send_event(admin, event, {})["execution_ids"]
    sweep(rt, datetime.now(UTC) + timedelta(seconds=31))
    body = execution(admin, execution_id)
    assert (body["status"], body["error_type"]) == ("failed", "timeout")
    assert "timed out" in body["error_message"]
    drive(rt)  # its ticket is gone: nothing runs
    assert execution(admin, execution_id)["status"] == "failed"
