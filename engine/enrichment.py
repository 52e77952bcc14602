"""`context.load` as the context shows it: each loaded resource at its path, and the
`_enrichment` report beside them. The shell fetches (tasks.enrichment); a dry run
or a shadow run takes the values it is given (engine.dryrun).

Resource `order.details` loaded as `{"carrier": "ups"}` is merged at
`order.details`; a value that is not an object is reported loaded but not
merged (there is no key to merge it under without clobbering its parent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.context import deep_merge

ENRICHMENT_KEY = "_enrichment"
# A resource's status in the report (besides "error", with the fetch's message).
LOADED = "loaded"
SKIPPED = "skipped"


def context_updates(
    values: Mapping[str, Any], report: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The context updates of one load: `values` (resource -> what was fetched) at their
    paths, and `report` (resource -> {status, error?}) under ENRICHMENT_KEY."""
    updates: dict[str, Any] = {}
    for resource, value in values.items():
        if isinstance(value, Mapping):
            updates = deep_merge(updates, _nested(resource, value))
    return deep_merge(updates, {ENRICHMENT_KEY: dict(report)})


def recorded_loads(context: Mapping[str, Any], resources: Iterable[str]) -> dict[str, Any]:
    """What a run's load put in its context, for those of `resources` its report says
    were loaded: the value now at each one's path (steps after the load may have
    changed it; the stored context keeps nothing older)."""
    report = context.get(ENRICHMENT_KEY)
    if not isinstance(report, Mapping):
        return {}
    loaded: dict[str, Any] = {}
    for resource in resources:
        entry = report.get(resource)
        if not isinstance(entry, Mapping) or entry.get("status") != LOADED:
            continue
        value = _at(context, resource)
        if isinstance(value, Mapping):
            loaded[resource] = dict(value)
    return loaded


def _nested(resource: str, value: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = dict(value)
    for part in reversed(resource.split(".")):
        nested = {part: nested}
    return nested


def _at(context: Mapping[str, Any], resource: str) -> Any:
    value: Any = context
    for part in resource.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
