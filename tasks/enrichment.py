"""`context.load`: resources fetched from the enrichment service and merged into the context.

Resource `order.details` is fetched with GET `{enrichment_base_url}/order/details`
(plus `?id=<order.id>` when the context has one), cached in Redis, and merged
at `order.details`. Every load is reported under the context key
`_enrichment` ({resource: {status, error?}}), so a miss is visible in the
execution and its trace; a missing resource keeps whatever the payload had.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import redis
import structlog

from engine.enrichment import LOADED, SKIPPED, context_updates
from engine.errors import StepError
from tasks.outbound import OutboundHttp

log = structlog.get_logger(__name__)
CACHE_PREFIX = "iw:enrichment:"


def load_resources(
    context: Mapping[str, Any],
    resources: Sequence[str],
    *,
    base_url: str,
    organization_id: str,
    http: OutboundHttp | None,
    cache: redis.Redis | None,
    cache_seconds: int,
    timeout: float,
) -> dict[str, Any]:
    """The context updates: fetched resources plus the `_enrichment` report."""
    values: dict[str, Any] = {}
    report: dict[str, Any] = {}
    for resource in resources:
        if not base_url or http is None:
            report[resource] = {"status": SKIPPED, "error": "no enrichment service configured"}
            continue
        url = _url(base_url, resource, context)
        try:
            value = _cached_fetch(
                url,
                organization_id=organization_id,
                http=http,
                cache=cache,
                cache_seconds=cache_seconds,
                timeout=timeout,
            )
        except StepError as exc:
            report[resource] = {"status": "error", "error": exc.message}
            log.warning("enrichment_failed", resource=resource, error=exc.message)
            continue
        report[resource] = {"status": LOADED}
        values[resource] = value
    return context_updates(values, report)


def _url(base_url: str, resource: str, context: Mapping[str, Any]) -> str:
    head = resource.split(".", 1)[0]
    url = f"{base_url.rstrip('/')}/{resource.replace('.', '/')}"
    owner = context.get(head)
    if isinstance(owner, Mapping) and owner.get("id") not in (None, ""):
        url += "?" + urlencode({"id": str(owner["id"])})
    return url


def _cached_fetch(
    url: str,
    *,
    organization_id: str,
    http: OutboundHttp,
    cache: redis.Redis | None,
    cache_seconds: int,
    timeout: float,
) -> Any:
    key = f"{CACHE_PREFIX}{organization_id}:{url}"
    if cache is not None and cache_seconds > 0:
        try:
            hit = cache.get(key)
        except redis.RedisError:
            hit = None
        if hit is not None:
            return json.loads(hit)
    value = http.get_json(url, timeout)
    if cache is not None and cache_seconds > 0:
        with contextlib.suppress(redis.RedisError):  # the cache is an optimisation
            cache.set(key, json.dumps(value), ex=cache_seconds)
    return value
