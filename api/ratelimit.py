"""Rate limits in Redis, per principal (default) and per IP (auth endpoints).

Counters live in Redis so limits hold across gunicorn workers and hosts.
The key function reads the credential cheaply (a JWT signature check or a hash
of the API key) because it runs before the view authenticates.

The X-RateLimit-* headers go on the 429 answer only (as SPEC §6 asks): putting
them on every answer made Flask-Limiter read the window back from Redis after
each request, a second Redis round trip (and, for the moving window, a binary
search over the list) on every call of the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from api.auth.principal import access_claims
from api.auth.tokens import TokenError, hash_token
from api.errors import error_response
from models.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

UNLIMITED_PATHS = ("/health", "/ready", "/metrics")


def principal_key() -> str:
    api_key = request.headers.get("X-API-Key")
    if api_key:
        return "key:" + hash_token(api_key)[:32]
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        try:
            claims = access_claims(header[7:].strip())
        except TokenError:
            return "ip:" + ip_key()
        return f"user:{claims.user_id}:{claims.organization_id}"
    return "ip:" + ip_key()


def ip_key() -> str:
    return get_remote_address() or "unknown"


def default_limit() -> str:
    from api.services import settings

    return settings().rate_limit_default


def auth_limit() -> str:
    from api.services import settings

    return settings().rate_limit_auth


def _is_exempt() -> bool:
    return request.path in UNLIMITED_PATHS or request.method == "OPTIONS"


def _on_breach(limit: RequestLimit) -> Response:
    from monitoring import metrics

    view = current_app.view_functions.get(request.endpoint or "")
    scope = "auth" if getattr(view, "_auth_rate_limited", False) else "default"
    metrics.record_rate_limited(scope)
    reset_at = limit.reset_at
    retry_after = max(1, int(reset_at - time.time()))
    response = error_response(
        429, "Too Many Requests", f"Rate limit exceeded ({limit.limit}); retry in {retry_after}s"
    )
    response.headers["Retry-After"] = str(retry_after)
    response.headers["X-RateLimit-Limit"] = str(limit.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(limit.remaining)
    response.headers["X-RateLimit-Reset"] = str(reset_at)
    return response


limiter = Limiter(
    key_func=principal_key,
    default_limits=[default_limit],
    default_limits_exempt_when=_is_exempt,
    headers_enabled=False,
    strategy="moving-window",
    key_prefix="iw",
    on_breach=_on_breach,
)


def auth_rate_limit(view: F) -> F:
    """The stricter per-IP limit of register/login/refresh (replaces the per-principal one)."""
    limited = limiter.limit(auth_limit, key_func=ip_key)(view)
    limited._auth_rate_limited = True  # type: ignore[attr-defined]
    return cast(F, limited)


def install_rate_limits(app: Flask, settings: Settings) -> None:
    app.config["RATELIMIT_ENABLED"] = settings.rate_limit_enabled
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url
    app.config["RATELIMIT_HEADERS_ENABLED"] = False
    app.config["RATELIMIT_SWALLOW_ERRORS"] = False
    limiter.init_app(app)
