"""Routing: which workflows an event starts, and which waits it wakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from engine.definition import Trigger

FilterEvaluator = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


def event_type_matches(pattern: str, event_type: str) -> bool:
    """Exact type or glob (``order.*``, ``*``), case-sensitive on every platform."""
    return fnmatchcase(event_type, pattern)


def event_matches(
    trigger: Trigger,
    event_type: str,
    payload: Mapping[str, Any],
    evaluate_filter: FilterEvaluator,
) -> bool:
    """Whether an event starts a workflow with this trigger.

    ``evaluate_filter(condition, payload)`` decides the trigger's optional
    ``filter``; the caller chooses how values are rendered (normally against the
    payload itself).
    """
    if trigger.type != "event" or not trigger.event:
        return False
    if not event_type_matches(trigger.event, event_type):
        return False
    return trigger.filter is None or evaluate_filter(trigger.filter, payload)
