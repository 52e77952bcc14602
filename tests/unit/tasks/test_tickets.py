"""Tickets written in bulk are paired with their ids by execution: one per execution."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from engine.definition import Definition
from models.execution import DispatchOutbox
from tasks.dispatch import Ticket, insert_tickets, new_ticket

DEFINITION = Definition.from_dict(
    {
        "trigger": {"type": "event", "event": "t"},
        "steps": [
            {
                "id": "a",
                "type": "execute",
                "execute": [{"type": "set", "values": {"x": 1}}],
                "next": "b",
            },
            {"id": "b", "type": "execute", "execute": [{"type": "log", "message": "m"}]},
        ],
    }
)


def test_two_tickets_of_one_execution_are_refused_before_anything_is_written() -> None:
    execution_id, now = uuid.uuid4(), datetime.now(UTC)
    tickets = [
        new_ticket(
            organization_id=uuid.uuid4(),
            execution_id=execution_id,
            definition=DEFINITION,
            step=DEFINITION.step(step_id),
            now=now,
        )
        for step_id in ("a", "b")
    ]
    # No session is needed: the check comes first.
    with pytest.raises(ValueError, match="one ticket per execution"):
        insert_tickets(cast(Any, None), tickets)


def test_a_ticket_carries_how_its_step_runs() -> None:
    """The definition says it once (engine.definition.RunMode); tasks.steprun reads it."""

    def message(step_id: str) -> dict[str, Any]:
        row = new_ticket(
            organization_id=uuid.uuid4(),
            execution_id=uuid.uuid4(),
            definition=DEFINITION,
            step=DEFINITION.step(step_id),
            now=datetime.now(UTC),
        )
        row.id = 1
        return Ticket.from_row(row).message()

    assert message("a")["mode"] == "plain"
    assert message("b")["mode"] == "atomic"
    # A ticket stored before tickets carried it: the step task asks the definition.
    old = DispatchOutbox(id=2, execution_id=uuid.uuid4(), payload={"step_id": "b"})
    assert Ticket.from_row(old).message()["mode"] is None


def test_a_message_with_a_mode_this_version_does_not_know_asks_the_definition() -> None:
    from tasks.dispatch import Ticket

    base = {"outbox_id": 1, "execution_id": str(uuid.uuid4()), "step_id": "a"}
    assert Ticket.parse({**base, "mode": "plain"}).mode == "plain"
    assert Ticket.parse({**base, "mode": "teleport"}).mode is None
    assert Ticket.parse(base).mode is None
