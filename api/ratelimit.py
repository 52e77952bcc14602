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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.storage import RedisStorage

from api.auth.principal import access_claims
from api.auth.tokens import TokenError, hash_token
from api.errors import error_response
from models.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

UNLIMITED_PATHS = ("/health", "/ready", "/metrics")
KEY_PREFIX = "iw"


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
    key_prefix=KEY_PREFIX,
    on_breach=_on_breach,
)


def auth_rate_limit(view: F) -> F:
    """The stricter per-IP limit of register/login/refresh (replaces the per-principal one)."""
    limited = limiter.limit(auth_limit, key_func=ip_key)(view)
    limited._auth_rate_limited = True  # type: ignore[attr-defined]
    return cast(F, limited)


def each_event_limited(view: F) -> F:
    """A view that charges the default limit once per item it accepts (charge_each),
    instead of once per request: exempt from the per-request charge."""
    return cast(F, limiter.exempt(view))


@dataclass(frozen=True)
class Charge:
    granted: int  # how many of the items asked for fit in the limit, the first ones
    retry_after: int  # seconds until the window that refused the rest has room (0: none)


# The default limit's moving windows as flask-limiter keeps them (limits' Redis
# moving window: a list of hit timestamps, newest first, trimmed to the limit),
# charged for as many items as every window has room for, in one round trip.
# KEYS: one window per limit; ARGV: now, items asked, then (amount, seconds) per window.
_CHARGE_EACH = """
local now = tonumber(ARGV[1])
local granted = tonumber(ARGV[2])
local binding = 0
for i, key in ipairs(KEYS) do
    local amount = tonumber(ARGV[1 + 2 * i])
    local expiry = tonumber(ARGV[2 + 2 * i])
    local low, high, used = 0, math.min(redis.call('llen', key), amount) - 1, 0
    while low <= high do
        local mid = math.floor((low + high) / 2)
        if tonumber(redis.call('lindex', key, mid)) >= now - expiry then
            used = mid + 1
            low = mid + 1
        else
            high = mid - 1
        end
    end
    if amount - used < granted then
        granted = amount - used
        binding = expiry
    end
end
if granted > 0 then
    local entries = {}
    for j = 1, granted do entries[j] = now end
    for i, key in ipairs(KEYS) do
        for j = 1, granted, 5000 do
            redis.call('lpush', key, unpack(entries, j, math.min(j + 4999, granted)))
        end
        redis.call('ltrim', key, 0, tonumber(ARGV[1 + 2 * i]) - 1)
        redis.call('expire', key, tonumber(ARGV[2 + 2 * i]))
    end
end
return {granted, binding}
"""


@lru_cache(maxsize=4)
def _charge_script(client: Any) -> Any:
    """The script, sent by its digest (EVALSHA) once Redis knows it."""
    return client.register_script(_CHARGE_EACH)


def charge_each(count: int) -> Charge:
    """Charge the current principal's default limit for `count` items of this request,
    in the windows the per-request charge of this endpoint would use: grants the
    first ones that fit (all or none is what flask-limiter's cost would do)."""
    from api.services import settings

    if not settings().rate_limit_enabled or count == 0:
        return Charge(count, 0)
    storage = limiter.storage
    if not isinstance(storage, RedisStorage):
        raise TypeError(f"per-item rate limits need Redis storage, not {type(storage)}")
    items = parse_many(default_limit())
    scope = request.endpoint or request.path
    keys = [
        storage.prefixed_key(item.key_for(KEY_PREFIX, principal_key(), scope)) for item in items
    ]
    args: list[float] = [time.time(), count]
    for item in items:
        args += [item.amount, item.get_expiry()]
    granted, binding = _charge_script(storage.storage)(keys=keys, args=args)
    granted = max(0, int(granted))
    if granted < count:
        from monitoring import metrics

        metrics.record_rate_limited("default")
    return Charge(granted, int(binding) if granted < count else 0)


def install_rate_limits(app: Flask, settings: Settings) -> None:
    app.config["RATELIMIT_ENABLED"] = settings.rate_limit_enabled
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url
    app.config["RATELIMIT_HEADERS_ENABLED"] = False
    app.config["RATELIMIT_SWALLOW_ERRORS"] = False
    limiter.init_app(app)
