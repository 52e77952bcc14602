"""Tickets written in bulk are paired with their ids by execution: one per execution."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from tasks.dispatch import insert_tickets, new_ticket


def test_two_tickets_of_one_execution_are_refused_before_anything_is_written() -> None:
    execution_id, now = uuid.uuid4(), datetime.now(UTC)
    tickets = [
        new_ticket(
            organization_id=uuid.uuid4(),
            execution_id=execution_id,
            step_id=step_id,
            now=now,
            limit=timedelta(minutes=5),
        )
        for step_id in ("a", "b")
    ]
    # No session is needed: the check comes first.
    with pytest.raises(ValueError, match="one ticket per execution"):
        insert_tickets(cast(Any, None), tickets)
