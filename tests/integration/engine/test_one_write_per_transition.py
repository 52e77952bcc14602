"""Every transition a step records is one statement of the transition writer.

Whatever the step decided (fan out, join, ask for an approval, finish), its
step run, the execution's next state, the ticket it consumed and the tickets,
approvals and waits it adds reach Postgres as one `iw_transition_*` statement
(models.writer via tasks.recording), never as ORM flushes or statements of
their own: there is one way to write each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.engine.conftest import create_workflow, execution, send_event
from tests.integration.engine.test_delivery_guarantees import run_ticket, tickets_of
from tests.support import recorded_statements, unique

WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")


@pytest.fixture
def statements(rt: Any) -> Iterator[list[str]]:
    with recorded_statements(rt.db_engine, rt.autocommit_engine) as sent:
        yield sent


def transitions_and_other_writes(statements: list[str]) -> tuple[int, list[str]]:
    transitions = sum("EXECUTE iw_transition_" in sql for sql in statements)
    others = [sql for sql in statements if sql.lstrip().upper().startswith(WRITES)]
    return transitions, others


def workflow(event: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    definition = {"trigger": {"type": "event", "event": event}, "steps": steps}
    return {
        "workflow_id": unique("wf"),
        "version": "1",
        "name": "One write",
        "definition": definition,
    }


def condition(step_id: str, value: int) -> dict[str, Any]:
    return {
        "id": step_id,
        "type": "condition",
        "condition": {"field": "n", "operator": "lte", "value": value},
    }


def run_one(rt: Any, execution_id: str, statements: list[str]) -> str:
    """Run the execution's one due ticket; what the statements wrote is checked by the caller."""
    [ticket] = tickets_of(rt, execution_id)
    statements.clear()
    return run_ticket(rt, ticket)


def test_a_fan_out_each_branch_and_the_join_are_one_write_each(
    admin: Any, rt: Any, statements: list[str]
) -> None:
    event = f"one.{unique('e')}"
    steps = [
        {
            "id": "checks",
            "type": "parallel",
            "parallel": {
                "strategy": "all_must_pass",
                "steps": [condition("x", 5), condition("y", 9)],
            },
            "next": "done",
        },
        {"id": "done", "type": "action", "action": {"type": "allow"}},
    ]
    create_workflow(admin, workflow(event, steps))
    [execution_id] = send_event(admin, event, {"n": 3})["execution_ids"]

    assert run_one(rt, execution_id, statements) == "fanned_out"
    assert transitions_and_other_writes(statements) == (1, [])
    branches = tickets_of(rt, execution_id)
    assert len(branches) == 2
    labels = []
    for ticket in branches:
        statements.clear()
        labels.append(run_ticket(rt, ticket))
        assert transitions_and_other_writes(statements) == (1, [])
    assert labels == ["branch_completed", "joined"]
    with rt.db_engine.connect() as connection:
        parent = connection.execute(
            text(
                "SELECT status, output FROM step_runs WHERE execution_id = :id "
                "AND step_id = 'checks' AND branch_key = ''"
            ),
            {"id": execution_id},
        ).one()
    assert parent.status == "completed"
    assert parent.output["passed"] is True
    assert run_one(rt, execution_id, statements) == "completed"
    assert transitions_and_other_writes(statements) == (1, [])
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")


def test_asking_for_an_approval_is_one_write_with_the_approval_in_it(
    admin: Any, rt: Any, statements: list[str]
) -> None:
    event = f"one.{unique('e')}"
    steps = [
        {
            "id": "ask",
            "type": "action",
            "action": {"type": "require_approval", "reason": "check it"},
            "execute": [
                {
                    "type": "create_approval_request",
                    "entity": "order",
                    "entity_id": "o-1",
                    "data": {"approver_role": "admin"},
                }
            ],
            "on_approve": "done",
            "on_reject": "done",
        },
        {"id": "done", "type": "action", "action": {"type": "allow"}},
    ]
    create_workflow(admin, workflow(event, steps))
    [execution_id] = send_event(admin, event, {})["execution_ids"]

    assert run_one(rt, execution_id, statements) == "waiting"
    assert transitions_and_other_writes(statements) == (1, [])
    body = execution(admin, execution_id)
    assert (body["status"], body["current_step_id"]) == ("waiting", "ask")
    with rt.db_engine.connect() as connection:
        approvals = connection.execute(
            text("SELECT status, entity_id FROM approvals WHERE execution_id = :id"),
            {"id": execution_id},
        ).all()
        tickets = connection.execute(
            text("SELECT count(*) FROM dispatch_outbox WHERE execution_id = :id"),
            {"id": execution_id},
        ).scalar_one()
    assert [tuple(row) for row in approvals] == [("pending", "o-1")]
    assert tickets == 0  # the consumed ticket went with the same statement
