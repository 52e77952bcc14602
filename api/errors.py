"""The one JSON error shape, for every 4xx/5xx the API returns.

`{"code": 422, "status": "Unprocessable Entity", "message": "...", "errors": {...}}`
Domain errors from other layers are translated here, once.
"""

from __future__ import annotations

from typing import Any, NoReturn

import structlog
from flask import Flask, Response, jsonify
from flask_smorest import abort as smorest_abort
from marshmallow import Schema, fields
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException

from api.outage import RETRY_AFTER_SECONDS, unavailable_dependency
from engine.errors import DefinitionError

log = structlog.get_logger(__name__)


class ErrorSchema(Schema):
    code = fields.Integer(required=True)
    status = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict()


def abort(
    code: int,
    message: str,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    kwargs: dict[str, Any] = {"message": message}
    if errors is not None:
        kwargs["errors"] = errors
    if headers:
        kwargs["headers"] = headers
    smorest_abort(code, **kwargs)
    raise AssertionError("unreachable")  # abort always raises


def error_body(code: int, status: str, message: str, errors: Any = None) -> dict[str, Any]:
    """The one error shape (also each rejected item of a batch answer)."""
    body: dict[str, Any] = {"code": code, "status": status, "message": message}
    if errors:
        body["errors"] = errors
    return body


def error_response(
    code: int, status: str, message: str, errors: Any = None, headers: Any = None
) -> Response:
    response = jsonify(error_body(code, status, message, errors))
    response.status_code = code
    if headers:
        for name, value in dict(headers).items():
            if name.lower() not in {"content-type", "content-length"}:
                response.headers[name] = value
    return response


def _http_error(error: HTTPException) -> Response:
    if isinstance(error.response, Response):
        # Built by our own code in the one error shape (the rate limiter's 429 with
        # its Retry-After and X-RateLimit-* headers): answer with it as it is.
        return error.response
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    message = data.get("message") or error.description or error.name
    # flask-smorest's abort() passes "errors"; webargs' parser passes "messages".
    errors = data.get("errors") or data.get("messages")
    if code == 422 and isinstance(errors, dict) and len(errors) == 1:
        # webargs nests errors under their location (json, query, ...); one location is implied.
        (location,) = errors
        if location in {"json", "query", "form", "headers", "view_args"}:
            errors = errors[location]
    if code == 422 and not data.get("message"):
        message = "The request did not validate"
    headers = data.get("headers") or error.get_headers()
    return error_response(code, error.name, str(message), errors, headers)


def _definition_error(error: DefinitionError) -> Response:
    return error_response(
        422, "Unprocessable Entity", "The workflow definition is invalid", error.as_dict()
    )


def unavailable_response(dependency: str) -> Response:
    """503 for an outage of `dependency`. Whatever the request committed before it
    met the outage stays committed: a retry must carry the same idempotency key."""
    return error_response(
        503,
        "Service Unavailable",
        f"The {dependency} is unavailable; retry after {RETRY_AFTER_SECONDS} s"
        " (with the same Idempotency-Key if the request carried one)",
        {"unavailable": [dependency]},
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def error_for_database(error: Exception) -> Response | None:
    """A value the database refused is the client's: a 4xx, never a 500.

    The input guards (api.inputs) and the schemas refuse what they can name
    first; this is the net under them (a value out of a column's range or
    length, a JSON escape Postgres cannot store, a race on a unique key).
    """
    if isinstance(error, DataError):
        log.info("database_data_error", error=str(error.orig).splitlines()[0])
        return error_response(
            422, "Unprocessable Entity", "The request carries a value the database cannot store"
        )
    if isinstance(error, IntegrityError):
        log.info("database_integrity_error", error=str(error.orig).splitlines()[0])
        return error_response(409, "Conflict", "The request conflicts with the stored data")
    return None


def _database_error(error: Exception) -> Response:
    return error_for_database(error) or _unexpected(error)


def _unexpected(error: Exception) -> Response:
    dependency = unavailable_dependency(error)
    if dependency is not None:
        log.warning("dependency_unavailable", dependency=dependency, error=repr(error))
        return unavailable_response(dependency)
    log.exception("unhandled_error", error=repr(error))
    return error_response(500, "Internal Server Error", "An unexpected error occurred")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DefinitionError, _definition_error)
    app.register_error_handler(DataError, _database_error)
    app.register_error_handler(IntegrityError, _database_error)
    app.register_error_handler(Exception, _unexpected)
