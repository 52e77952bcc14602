"""Request id, access log, security headers, CORS allow-list."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlsplit

import structlog
from flask import Flask, Response, g, request

log = structlog.get_logger("api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# Last-Event-ID: the console resumes a live stream on another origin (api/streams).
CORS_ALLOWED_HEADERS = (
    "Authorization, X-API-Key, Content-Type, Idempotency-Key, X-Request-ID, Last-Event-ID"
)
CORS_ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# The console is served from the same origin and bundles everything: no inline
# scripts, no CDN. Swagger UI is the exception and gets its own policy. It may
# connect to the stream service too when that has an origin of its own
# (STREAM_REDIRECT_URL): {streams} is that origin, or nothing.
CSP_DEFAULT = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'{streams}; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
CSP_DOCS = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline' https:; "
    "script-src 'self' 'unsafe-inline' https:; connect-src 'self'; frame-ancestors 'none'"
)


def _begin() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    docs = request.path.startswith("/api/v1/docs")
    response.headers.setdefault("Content-Security-Policy", CSP_DOCS if docs else _default_csp())
    if request.is_secure or request.headers.get("X-Forwarded-Proto") == "https":
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    _apply_cors(response)
    principal = g.get("principal")
    log.info(
        "request",
        method=request.method,
        path=request.path,
        route=request.url_rule.rule if request.url_rule else None,
        status=response.status_code,
        duration_ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
        organization_id=str(principal.organization_id) if principal else None,
        user_id=str(principal.user_id) if principal and principal.user_id else None,
        remote_addr=request.remote_addr,
    )
    return response


def _apply_cors(response: Response) -> None:
    origin = request.headers.get("Origin")
    allowed = _allowed_origins()
    if not origin or origin not in allowed:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOWED_METHODS
    response.headers["Access-Control-Expose-Headers"] = (
        "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
    )
    response.headers["Access-Control-Max-Age"] = "600"


def _default_csp() -> str:
    from api.services import settings

    streams = _origin(settings().stream_redirect_url)
    return CSP_DEFAULT.format(streams=f" {streams}" if streams else "")


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, or "" (CSP sources are origins, not paths)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _allowed_origins() -> tuple[str, ...]:
    from api.services import settings

    return settings().cors_origins


def _preflight() -> Response | None:
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        return Response(status=204)
    return None


def install_middleware(app: Flask) -> None:
    app.before_request(_begin)
    app.before_request(_preflight)
    app.after_request(_finish)
