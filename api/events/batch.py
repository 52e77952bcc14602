"""Accepting a batch of events: one answer per event, in request order.

What one event costs POST /events (authentication, the rate-limit round trip,
the routing read, the write, the publish) is paid once for the whole batch:
the caller is authenticated once, the rate limit charged once per event in one
Redis round trip (api.ratelimit.charge_each), the organization's workflows and
open waits read in one statement, the events, their executions and tickets
written in one multi-row write (api.events.service.write_events, the single
event's own), the tickets published in one pipelined round trip.

Each event is answered on its own: accepted (its id and the executions it
started, or the first answer of its idempotency key, from an earlier request or
from an earlier event of the same batch) or rejected with its own 4xx in the
one error shape (422 for an event that does not validate, 429 past the rate
limit). One bad event rejects no other. The write is one transaction: if the
database refuses it (a key taken by a concurrent request, a value it cannot
store), each event is written on its own instead, as POST /events would, so
the others still land and nothing lands half.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError

from api.auth.principal import Principal
from api.errors import error_body
from api.events.service import (
    matching_workflows,
    new_event,
    receive_event,
    workflow_records,
    write_events,
)
from api.ratelimit import charge_each
from api.services import autocommit_connection
from models.execution import Event
from models.prepared import PreparedStatement, execute_prepared
from monitoring import metrics
from tasks.launch import Start


@dataclass(frozen=True)
class Invalid:
    """An item of the batch that did not validate, with its errors by field."""

    errors: dict[str, Any]


Answer = dict[str, Any]


def accept_batch(principal: Principal, items: Sequence[Mapping[str, Any] | Invalid]) -> Answer:
    answers: list[Answer | None] = [None] * len(items)
    valid: list[tuple[int, Mapping[str, Any]]] = []
    for index, item in enumerate(items):
        if isinstance(item, Invalid):
            answers[index] = _rejected(
                index, 422, "Unprocessable Entity", "The event did not validate", item.errors
            )
        else:
            valid.append((index, item))
    charge = charge_each(len(valid))
    for index, _ in valid[charge.granted :]:
        answers[index] = _rejected(
            index,
            429,
            "Too Many Requests",
            f"Rate limit exceeded; retry in {charge.retry_after}s",
        )
    _accept(principal, valid[: charge.granted], answers)
    results = [answer for answer in answers if answer is not None]
    accepted = sum(1 for answer in results if answer["status"] == 202)
    return {
        "accepted": accepted,
        "rejected": len(results) - accepted,
        "retry_after": charge.retry_after or None,
        "results": results,
    }


def _accept(
    principal: Principal,
    events: list[tuple[int, Mapping[str, Any]]],
    answers: list[Answer | None],
) -> None:
    """Answer every event: from the events stored before under its key, from the
    first event of the batch with its key, or by storing it."""
    keys = {body["idempotency_key"] for _, body in events if body.get("idempotency_key")}
    stored_before = _events_by_key(principal.organization_id, keys) if keys else {}
    first_with_key: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []  # (index, index of the first event with its key)
    new: list[tuple[int, Mapping[str, Any]]] = []
    for index, body in events:
        key = body.get("idempotency_key")
        if key and key in stored_before:
            answers[index] = _accepted(index, stored_before[key], repeated=True)
        elif key and key in first_with_key:
            repeats.append((index, first_with_key[key]))
        else:
            if key:
                first_with_key[key] = index
            new.append((index, body))
    _store(principal, new, answers)
    for index, first in repeats:
        answer = answers[first]
        assert answer is not None  # every new event is answered by _store
        answers[index] = {**answer, "index": index, "repeated": answer["status"] == 202}


def _store(
    principal: Principal,
    events: list[tuple[int, Mapping[str, Any]]],
    answers: list[Answer | None],
) -> None:
    if not events:
        return
    now = datetime.now(UTC)
    routes = _routes(principal.organization_id, {body["event_type"] for _, body in events})
    stored: list[tuple[int, Event]] = []
    starts: list[Start] = []
    for index, body in events:
        payload = dict(body.get("payload") or {})
        matching = [
            (workflow, uuid.uuid4())
            for workflow in matching_workflows(routes.workflows, body["event_type"], payload)
        ]
        event = new_event(
            principal,
            body,
            payload=payload,
            key=body.get("idempotency_key"),
            matching=matching,
            now=now,
        )
        stored.append((index, event))
        starts.extend(
            Start(workflow, execution_id, payload, event) for workflow, execution_id in matching
        )
    try:
        write_events(
            [event for _, event in stored],
            starts,
            waking=[event for _, event in stored if event.event_type in routes.waiting],
            now=now,
            created_by=principal.user_id,
        )
    except (IntegrityError, DataError):
        # A key stored meanwhile by a concurrent request, or a value the database
        # cannot store: nothing of the batch was written. Each event on its own, so
        # the others land and the one at fault gets its own answer.
        for index, body in events:
            answers[index] = _accept_alone(principal, index, body)
        return
    for index, event in stored:
        metrics.record_event_received(event.event_type)
        answers[index] = _accepted(index, event, repeated=False)


def _accept_alone(principal: Principal, index: int, body: Mapping[str, Any]) -> Answer:
    try:
        event, repeated = receive_event(principal, body, None)
    except DataError:
        return _rejected(
            index,
            422,
            "Unprocessable Entity",
            "The event carries a value the database cannot store",
        )
    return _accepted(index, event, repeated=repeated)


# The organization's enabled event workflows, and which of the batch's event types
# have a wait open, in one statement (as api.events.service's routing read for one).
_BATCH_ROUTES = PreparedStatement(
    "iw_event_batch_routes",
    "SELECT w.id, w.organization_id, w.workflow_id, w.version, w.definition::text, o.waiting"
    " FROM (SELECT ARRAY(SELECT DISTINCT event_type FROM waits"
    " WHERE organization_id = %(organization_id)s AND kind = 'event' AND status = 'waiting'"
    " AND event_type = ANY(%(event_types)s::text[])) AS waiting) o"
    " LEFT JOIN workflows w ON w.organization_id = %(organization_id)s AND w.enabled"
    " AND w.trigger_type = 'event'"
    " ORDER BY w.workflow_id",
)

# The first answers of idempotency keys, for the keys of a batch.
_EVENTS_BY_KEY = PreparedStatement(
    "iw_events_by_key",
    "SELECT id, event_type, idempotency_key, received_at, triggered_workflows, execution_ids"
    " FROM events WHERE organization_id = %(organization_id)s"
    " AND idempotency_key = ANY(%(keys)s::text[])",
)


@dataclass(frozen=True)
class _Routes:
    workflows: list[Any]  # the organization's enabled event workflows (WorkflowRecord)
    waiting: frozenset[str]  # the batch's event types with a wait open


def _routes(organization_id: uuid.UUID, event_types: set[str]) -> _Routes:
    rows = execute_prepared(
        autocommit_connection(),
        [_BATCH_ROUTES],
        {"organization_id": organization_id, "event_types": sorted(event_types)},
    ).all()
    return _Routes(workflow_records(rows), frozenset(rows[0][5] or ()))


def _events_by_key(organization_id: uuid.UUID, keys: set[str]) -> dict[str, Event]:
    rows = execute_prepared(
        autocommit_connection(),
        [_EVENTS_BY_KEY],
        {"organization_id": organization_id, "keys": sorted(keys)},
    ).all()
    return {
        row[2]: Event(
            id=row[0],
            event_type=row[1],
            idempotency_key=row[2],
            received_at=row[3],
            triggered_workflows=row[4],
            execution_ids=row[5],
        )
        for row in rows
    }


def _accepted(index: int, event: Event, *, repeated: bool) -> Answer:
    # JSON-ready (EventBatchAnswerSchema's shape, as its fields would render it): the
    # answer is sent as it is, without a schema dump of hundreds of events.
    return {
        "index": index,
        "status": 202,
        "repeated": repeated,
        "event": {
            "id": str(event.id),
            "event_type": event.event_type,
            "idempotency_key": event.idempotency_key,
            "received_at": event.received_at.isoformat(),
            "triggered_workflows": list(event.triggered_workflows),
            "execution_ids": list(event.execution_ids),
        },
    }


def _rejected(
    index: int, code: int, status: str, message: str, errors: dict[str, Any] | None = None
) -> Answer:
    return {"index": index, "status": code, "error": error_body(code, status, message, errors)}
