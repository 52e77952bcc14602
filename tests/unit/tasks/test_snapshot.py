"""tasks.locking.snapshot: the execution row a step message carries, and back."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from tasks.locking import (
    SNAPSHOT_MAX_CONTEXT_CHARS,
    LockedExecution,
    from_snapshot,
    pinned_with_digest,
    snapshot,
)

DEFINITION_TEXT = json.dumps(
    {
        "trigger": {"type": "manual"},
        "steps": [{"id": "a", "type": "action", "action": {"type": "allow"}}],
    }
)


def an_execution(**changes: object) -> LockedExecution:
    definition, digest = pinned_with_digest(DEFINITION_TEXT)
    execution = LockedExecution(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        workflow_id="wf",
        definition=definition,
        status="running",
        result=None,
        trigger_type="event",
        context={"n": 1, "nested": {"s": "é"}},
        current_step_id="a",
        attempt_group=2,
        version=7,
        started_at=datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC),
        running_seconds=1.5,
        deadline_at=datetime(2026, 11, 27, 11, 0, tzinfo=UTC),
        row_xmin="123456",
        definition_digest=digest,
    )
    return replace(execution, **changes)  # type: ignore[arg-type]


def test_a_snapshot_comes_back_as_the_row_it_was_taken_of() -> None:
    execution = an_execution()
    carried = snapshot(execution, json.dumps(execution.context))
    assert carried is not None
    # It travels as JSON in the Celery message.
    back = from_snapshot(execution.id, json.loads(json.dumps(carried)))
    assert back == execution
    assert back is not None and back.definition is execution.definition


def test_missing_times_and_results_stay_missing() -> None:
    execution = an_execution(started_at=None, deadline_at=None, result="allowed")
    carried = snapshot(execution, json.dumps(execution.context))
    assert carried is not None
    assert from_snapshot(execution.id, carried) == execution


def test_a_big_context_is_not_carried() -> None:
    execution = an_execution()
    big = json.dumps({"blob": "x" * SNAPSHOT_MAX_CONTEXT_CHARS})
    assert snapshot(execution, big) is None


def test_an_unknown_definition_gives_no_row() -> None:
    execution = an_execution()
    carried = snapshot(execution, json.dumps(execution.context))
    assert carried is not None
    assert from_snapshot(execution.id, {**carried, "definition": "f" * 32}) is None
