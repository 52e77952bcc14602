"""HTTP endpoints of events: send one (routing it to workflows and waits), list, read."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask.views import MethodView

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import current_principal, requires
from api.events import service
from api.events.schemas import EventBodySchema, EventListQuerySchema, EventPageSchema, EventSchema
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


@blp.route("/events/<uuid:event_id>")
class EventById(MethodView):
    @requires("event:read")
    @blp.response(200, EventSchema)
    @error_responses(blp, *AUTHENTICATED_ERRORS, 404)
    def get(self, event_id: uuid.UUID) -> Event:
        """Read one event. Requires `event:read`."""
        return service.get_event(current_principal().organization_id, event_id)
