"""HTTP endpoints of the live streams: /executions/{id}/events and /executions/stream.

Everything that can refuse a stream (authentication, permission, tenancy, a bad
Last-Event-ID, the per-principal limit, the feed being down) is decided before
the first byte, so it answers in the one JSON error shape.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from flask import Response, request
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.auth.openapi import AUTHENTICATED_ERRORS, error_responses, resource_blueprint
from api.auth.principal import authenticated, current_principal, requires
from api.errors import abort
from api.executions import service as executions
from api.services import services, settings
from api.streams import service
from api.streams.feed import FeedUnavailable, feed_of
from api.streams.slots import StreamSlot, principal_slot_key
from engine.state import ExecutionStatus

blp = resource_blueprint("streams", __name__, "Live execution updates (Server-Sent Events)")

_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _stream_doc(description: str) -> dict[str, Any]:
    return {
        "responses": {
            "200": {
                "description": description,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        }
    }


class StreamQuerySchema(Schema):
    workflow_id = fields.String(
        validate=validate.Length(min=1, max=100), metadata={"description": "The workflow's slug"}
    )
    status = fields.String(validate=validate.OneOf([s.value for s in ExecutionStatus]))


class StreamEndpointSchema(Schema):
    base_url = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Where clients open the stream routes (scheme, host, port; no"
            " trailing slash); null: on this origin, at the same paths"
        },
    )


@blp.route("/streams/endpoint", methods=["GET"])
@authenticated
@blp.response(200, StreamEndpointSchema)
@error_responses(blp, 401, 429)
def stream_endpoint() -> dict[str, Any]:
    """Where to open the live streams

    Any authenticated caller. `base_url` is the stream service's public address
    (`STREAM_REDIRECT_URL`) when this host sends the stream routes there: a
    browser opens them there directly, since it would drop its `Authorization`
    header on the redirect to another origin (and `fetch` cannot read a 307's
    Location). null: open them on this origin (this host, or a proxy in front of
    it, serves them).
    """
    return {"base_url": settings().stream_redirect_url or None}


@blp.route("/executions/<uuid:execution_id>/events")
class ExecutionEvents(MethodView):
    @requires("execution:read")
    @blp.doc(**_stream_doc("`step`, `execution` (id: `<version>.<steps_at>`), then `end`"))
    @error_responses(blp, *AUTHENTICATED_ERRORS, 400, 404, 503)
    def get(self, execution_id: uuid.UUID) -> Response:
        """Follow one execution as its changes are committed

        Requires `execution:read`. `text/event-stream`: first every step run so
        far, then each committed change: `event: step` (a step run's attempt and
        status), `event: execution` (its version, status and current step; the
        event id is `<version>.<steps_at>`), and `event: end` when it finishes.
        Resume with `Last-Event-ID`: newer steps and state are read from the
        database first. A `: heartbeat` comment every `STREAM_HEARTBEAT_SECONDS`.
        429 beyond `STREAM_MAX_PER_PRINCIPAL` open streams. The stream ends with
        `event: expired` when the access token that opened it expires: reconnect
        with a fresh one (and Last-Event-ID).
        """
        redirected = _redirect_elsewhere()
        if redirected is not None:
            return redirected
        principal = current_principal()
        try:
            cursor = service.parse_execution_cursor(request.headers.get("Last-Event-ID"))
        except service.BadCursor as exc:
            abort(400, str(exc))
        executions.get_execution(principal.organization_id, execution_id)  # 404 if not ours
        stream = _open(
            str(principal.organization_id), lambda c: c.execution_id == str(execution_id)
        )
        return _response(stream, service.execution_events(stream, execution_id, cursor))


@blp.route("/executions/stream")
class ExecutionStream(MethodView):
    @requires("execution:read")
    @blp.arguments(StreamQuerySchema, location="query")
    @blp.doc(**_stream_doc("`execution` events (id: `<updated_at>` in microseconds)"))
    @error_responses(blp, *AUTHENTICATED_ERRORS, 400, 422, 503)
    def get(self, query: dict[str, Any]) -> Response:
        """Follow the organization's executions as their changes are committed

        Requires `execution:read`. Filters: `workflow_id` (slug), `status` (the
        new status). `event: execution` per committed change (execution id,
        workflow, version, status, current step); a client that sees a version
        jump re-reads that execution. Resume with `Last-Event-ID`: executions
        changed since are sent in their current state first. Heartbeats, the
        per-principal limit and `event: expired` as for one execution's events.
        """
        redirected = _redirect_elsewhere()
        if redirected is not None:
            return redirected
        principal = current_principal()
        try:
            since = service.parse_list_cursor(request.headers.get("Last-Event-ID"))
        except service.BadCursor as exc:
            abort(400, str(exc))
        stream = _open(str(principal.organization_id), service.list_filter(query))
        body = service.execution_list_events(stream, principal.organization_id, query, since)
        return _response(stream, body)


def _redirect_elsewhere() -> Response | None:
    """On a host whose workers cannot hold streams (sync), send the client to the
    stream service with the same path and query (307 keeps the method); with no
    stream service configured there, refuse (503) rather than hold a worker."""
    config = settings()
    target = config.stream_redirect_url
    if not target and not config.serve_streams:
        abort(
            503,
            "This host does not serve live streams and names no stream service"
            " (STREAM_REDIRECT_URL); poll the execution instead",
        )
    if not target:
        return None
    query = urlencode(list(request.args.items(multi=True)))
    location = f"{target}{request.path}" + (f"?{query}" if query else "")
    return Response(status=307, headers={"Location": location, "Cache-Control": "no-store"})


def _open(organization_id: str, accepts: Any) -> service.Stream:
    config = settings()
    slot = StreamSlot(
        services().redis,
        principal_slot_key(current_principal()),
        stale_seconds=config.stream_heartbeat_seconds * 3,
    )
    if not slot.take(config.stream_max_per_principal):
        abort(
            429,
            f"Too many open streams ({config.stream_max_per_principal} per caller);"
            " close one first",
            headers={"Retry-After": str(int(config.stream_heartbeat_seconds))},
        )
    feed = feed_of(config.database_url)
    try:
        subscription = feed.subscribe(organization_id, accepts)
    except FeedUnavailable as exc:
        slot.release()
        abort(503, str(exc), {"unavailable": ["database"]}, headers={"Retry-After": "5"})
    return service.Stream(
        sessions=services().session_factory,
        feed=feed,
        subscription=subscription,
        slot=slot,
        heartbeat_seconds=config.stream_heartbeat_seconds,
        expires_at=current_principal().token_expires_at,
    )


def _response(stream: service.Stream, body: Any) -> Response:
    """The body needs no request context (it was given what it reads). direct_passthrough:
    nothing may buffer the stream (see api/ai/service.py)."""
    response = Response(
        body, mimetype="text/event-stream", headers=_HEADERS, direct_passthrough=True
    )
    # Also when the body never started (the client left before the first byte).
    response.call_on_close(stream.close)
    return response
