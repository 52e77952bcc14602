"""Accepting events: store, route to matching workflows, wake matching waits, one transaction.

Routing reads the organization's enabled event workflows, and whether any
wait is open for the event's type, in one statement on an autocommit
connection, before the writes. Most events wake no wait: their writes (the
event, its executions and their tickets) are then one multi-statement query
(models.rows.InsertBatch) that Postgres runs as one implicit transaction on an
autocommit connection, with no BEGIN or COMMIT round trip. An event with open
waits of its type takes a transaction that also locks and wakes them. A wait
opened between the read and the write is not woken: it began after the event
arrived.

The same idempotency key returns the first answer (stored on the event row)
and starts nothing twice: the unique (organization, idempotency_key) index
settles concurrent repeats.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.auth.principal import Principal
from api.dispatch import publish_after_commit, publish_now
from api.errors import abort
from api.pagination import paginate
from api.services import autocommit_connection, services
from engine.condition import evaluate
from engine.templating import TemplateRenderer
from engine.trigger import event_matches
from models.execution import DispatchOutbox, Event
from models.prepared import PreparedStatement, execute_prepared
from models.rows import InsertBatch
from monitoring import metrics
from tasks.applied import record_metrics
from tasks.launch import Start, WorkflowRecord, start_many
from tasks.resume import resume_event_waits

_renderer = TemplateRenderer()


def accept_event(principal: Principal, body: Mapping[str, Any], header_key: str | None) -> Event:
    event, _ = receive_event(principal, body, header_key)
    return event


def receive_event(
    principal: Principal, body: Mapping[str, Any], header_key: str | None
) -> tuple[Event, bool]:
    """The event's answer, and whether it is the first answer of its idempotency key
    (stored before) rather than this event's own."""
    key = body.get("idempotency_key") or header_key or None
    if key is not None:
        existing = _find_by_key(principal.organization_id, key)
        if existing is not None:
            return existing, True
    try:
        event = _store_and_route(principal, body, key)
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        existing = _find_by_key(principal.organization_id, key) if key else None
        if existing is None:
            raise
        return existing, True
    metrics.record_event_received(event.event_type)
    return event, False


def _store_and_route(principal: Principal, body: Mapping[str, Any], key: str | None) -> Event:
    now = datetime.now(UTC)
    payload = dict(body.get("payload") or {})
    routes = _routes(principal.organization_id, body["event_type"], payload)
    matching = [(workflow, uuid.uuid4()) for workflow in routes.workflows]
    event = new_event(principal, body, payload=payload, key=key, matching=matching, now=now)
    write_events(
        [event],
        [Start(workflow, execution_id, payload, event) for workflow, execution_id in matching],
        waking=[event] if routes.waits_open else [],
        now=now,
        created_by=principal.user_id,
    )
    return event


def new_event(
    principal: Principal,
    body: Mapping[str, Any],
    *,
    payload: dict[str, Any],
    key: str | None,
    matching: Sequence[tuple[WorkflowRecord, uuid.UUID]],
    now: datetime,
) -> Event:
    """The event's row (not in any session), with the answer it gives: stored with
    the event, so a repeated key returns it as is."""
    return Event(
        id=uuid.uuid4(),
        organization_id=principal.organization_id,
        event_type=body["event_type"],
        source=body.get("source"),
        payload=payload,
        idempotency_key=key,
        received_at=now,
        triggered_workflows=[workflow.workflow_id for workflow, _ in matching],
        execution_ids=[str(execution_id) for _, execution_id in matching],
    )


def write_events(
    events: Sequence[Event],
    starts: Sequence[Start],
    *,
    waking: Sequence[Event],
    now: datetime,
    created_by: uuid.UUID | None,
) -> None:
    """Store events with the executions they start and their tickets, wake the waits
    of the events in `waking` (those whose type has a wait open), publish the tickets.
    All of it or nothing: one transaction."""
    # Plain INSERTs of the events, the executions and their tickets, in one round
    # trip (nothing reads them back). The events' go first: a duplicate key fails
    # there, before any execution exists.
    batch = InsertBatch()
    batch.add(Event, [_columns(event) for event in events])
    launch = partial(
        start_many,
        starts=starts,
        now=now,
        trigger_type="event",
        created_by=created_by,
        batch=batch,
    )
    if not waking:
        # On the autocommit connection the one multi-statement write is its own
        # transaction, committed when it returns: the tickets go out at once.
        publish_now([started.ticket for started in launch(autocommit_connection())])
        return
    with services().unit_of_work() as uow:
        tickets: list[DispatchOutbox] = [started.ticket for started in launch(uow.session)]
        for event in waking:
            for applied in resume_event_waits(uow.session, event, now=now):
                tickets.extend(applied.tickets)
                uow.after_commit(partial(record_metrics, applied))
        publish_after_commit(uow, tickets)
        uow.commit()


def _columns(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "organization_id": event.organization_id,
        "event_type": event.event_type,
        "source": event.source,
        "payload": event.payload,
        "idempotency_key": event.idempotency_key,
        "received_at": event.received_at,
        "triggered_workflows": event.triggered_workflows,
        "execution_ids": event.execution_ids,
    }


# Only the columns a launch needs, as rows (not ORM objects), prepared once per
# connection: on the path of every event. The definition comes as its JSON text,
# parsed once per text (WorkflowRecord.trigger, .parsed). The one-row left side
# says whether a wait of this type is open, and keeps a row when no workflow is.
_EVENT_ROUTES = PreparedStatement(
    "iw_event_routes",
    "SELECT w.id, w.organization_id, w.workflow_id, w.version, w.definition::text, o.waiting"
    " FROM (SELECT EXISTS (SELECT 1 FROM waits WHERE organization_id = %(organization_id)s"
    " AND kind = 'event' AND status = 'waiting' AND event_type = %(event_type)s) AS waiting) o"
    " LEFT JOIN workflows w ON w.organization_id = %(organization_id)s AND w.enabled"
    " AND w.trigger_type = 'event'"
    " ORDER BY w.workflow_id",
)


@dataclass(frozen=True)
class _Routes:
    workflows: list[WorkflowRecord]  # the enabled workflows this event starts
    waits_open: bool  # whether any wait for this event type is open


def _routes(organization_id: uuid.UUID, event_type: str, payload: dict[str, Any]) -> _Routes:
    rows = execute_prepared(
        autocommit_connection(),
        [_EVENT_ROUTES],
        {"organization_id": organization_id, "event_type": event_type},
    ).all()
    records = workflow_records(rows)
    return _Routes(matching_workflows(records, event_type, payload), waits_open=bool(rows[0][5]))


def workflow_records(rows: Sequence[Sequence[Any]]) -> list[WorkflowRecord]:
    """The workflows of a routing read's rows (id, organization, workflow id, version,
    definition text first; a row without a workflow has a NULL id)."""
    return [
        WorkflowRecord(
            id=row[0],
            organization_id=row[1],
            workflow_id=row[2],
            version=row[3],
            definition_text=row[4],
        )
        for row in rows
        if row[0] is not None
    ]


def matching_workflows(
    records: Sequence[WorkflowRecord], event_type: str, payload: dict[str, Any]
) -> list[WorkflowRecord]:
    """The workflows an event of this type and payload starts (trigger type or glob,
    and its payload filter)."""
    return [
        record
        for record in records
        if event_matches(record.trigger, event_type, payload, _filter_holds)
    ]


def _filter_holds(condition: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    try:
        return evaluate(condition, payload, render=lambda value: _renderer.render(value, payload))
    except Exception:  # a filter that cannot be evaluated does not match
        return False


def _find_by_key(organization_id: uuid.UUID, key: str) -> Event | None:
    with services().session_factory() as session:
        return session.scalars(
            select(Event).where(
                Event.organization_id == organization_id, Event.idempotency_key == key
            )
        ).first()


def list_events(organization_id: uuid.UUID, query: Mapping[str, Any]) -> dict[str, Any]:
    statement = select(Event).where(Event.organization_id == organization_id)
    if query.get("event_type"):
        statement = statement.where(Event.event_type == query["event_type"])
    if query.get("since"):
        statement = statement.where(Event.received_at >= query["since"])
    if query.get("until"):
        statement = statement.where(Event.received_at < query["until"])
    statement = statement.order_by(Event.received_at.desc(), Event.id)
    with services().session_factory() as session:
        return paginate(session, statement, query["page"], query["page_size"], "events")


def get_event(organization_id: uuid.UUID, event_id: uuid.UUID) -> Event:
    with services().session_factory() as session:
        event = session.scalars(
            select(Event).where(Event.id == event_id, Event.organization_id == organization_id)
        ).first()
    if event is None:
        abort(404, "Event not found")
    return event
