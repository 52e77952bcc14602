"""HTTP endpoints of events: send one (routing it to workflows and waits), list, read."""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.errors import abort
from api.events import batch, service
from api.events.schemas import (
    EventBatchAnswerSchema,
    EventBatchSchema,
    EventBodySchema,
    EventListQuerySchema,
    EventPageSchema,
    EventSchema,
)
from api.inputs import checks_its_items
from api.ratelimit import each_event_limited
from api.services import settings
from models.execution import Event

blp = resource_blueprint("events", __name__, "Events: the triggers of workflows")


@blp.route("/events")
class Events(MethodView):
    @requires("event:create")
    @blp.arguments(EventBodySchema)
    @blp.response(202, EventSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 413, 422)
    def post(self, body: dict[str, Any]) -> Event:
        """Send an event.

        Requires `event:create`. Starts every enabled workflow whose trigger
        matches (exact type or glob, plus its optional payload filter) and wakes
        the executions waiting for it; answers 202 with the executions started.
        The same `idempotency_key` (or `Idempotency-Key` header) returns the
        first answer and starts nothing again.
        """
        header = request.headers.get("Idempotency-Key")
        return service.accept_event(current_principal(), body, header.strip() if header else None)

    @requires("event:read")
    @blp.arguments(EventListQuerySchema, location="query")
    @blp.response(200, EventPageSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 422)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List events, newest first.

        Requires `event:read`. Filters: `event_type`, `since`, `until`.
        """
        return service.list_events(current_principal().organization_id, query)


@blp.route("/events/batch")
class EventBatch(MethodView):
    # Charged per event (api.ratelimit.charge_each), not per request; a value the
    # database cannot store rejects its event, not the batch.
    decorators = [each_event_limited, checks_its_items]

    @requires("event:create")
    @blp.arguments(EventBatchSchema)
    @blp.response(207, EventBatchAnswerSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 413, 422)
    def post(self, body: dict[str, Any]) -> Response:
        """Send many events.

        Requires `event:create`. Each event is handled as `POST /events` would
        (give each its own `idempotency_key`; the `Idempotency-Key` header does
        not apply) and answered on its own, in request order: `status` 202 with
        the event id and the executions it started (or the first answer of its
        idempotency key, from an earlier request or an earlier event of this
        batch, with `repeated`), or the 4xx it was rejected with (422 invalid,
        429 past the rate limit, counted per event) in `error`. One rejected event
        rejects no other. More than `EVENT_BATCH_MAX` events (500 by default) is
        a 413.
        """
        limit = settings().event_batch_max
        if len(body["events"]) > limit:
            abort(413, f"A batch holds at most {limit} events; send the rest in another")
        if request.headers.get("Idempotency-Key"):
            abort(
                422,
                "The Idempotency-Key header does not apply to a batch:"
                " give each event its idempotency_key",
            )
        answer = batch.accept_batch(current_principal(), body["events"])
        # Built JSON-ready (api.events.batch): sent without a schema dump, which cost
        # as much as storing the events.
        response = current_app.response_class(
            json.dumps(answer), status=207, mimetype="application/json"
        )
        if answer["retry_after"]:
            response.headers["Retry-After"] = str(answer["retry_after"])
        return response


@blp.route("/events/<uuid:event_id>")
class EventById(MethodView):
    @requires("event:read")
    @blp.response(200, EventSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, event_id: uuid.UUID) -> Event:
        """Read one event. Requires `event:read`."""
        return service.get_event(current_principal().organization_id, event_id)
