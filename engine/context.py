"""The execution context: what templates and conditions read.

Layout (SPEC §2 Context): the trigger payload's keys at the top level, plus

* ``execution``: ``{id, started_at}``; ``workflow``: ``{id, version}``;
* ``now``: ISO 8601 UTC text, refreshed by the shell before each step
  (``with_now``) so that ``{{ now }}`` is the step's own time; and
  ``now_plus_24h``, which the original examples use for due dates;
* ``event``: ``{type, id, ...payload}`` when started by an event, so the
  original examples' ``{{ event.batch_id }}`` works (a payload key named
  ``event`` wins);
* ``steps.<step_id>.output`` (and ``.error``), ``approvals.<step_id>``,
  ``events.<event type>`` and ``error``, written as the execution runs;
* ``approval_url``: set by the shell before running a step that creates an
  approval (``Step.creates_approval``), so its notifications can link to it.

Keys the engine adds win over payload keys of the same name, except ``event``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``update`` merged into ``base``; nested objects merge, anything
    else (lists included) is replaced. Neither argument is changed."""
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def build_context(
    payload: Mapping[str, Any],
    *,
    execution_id: str,
    started_at: datetime,
    workflow_id: str,
    workflow_version: str,
    event_type: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    context = dict(payload)
    if event_type is not None and "event" not in payload:
        context["event"] = {"type": event_type, "id": event_id, **payload}
    context["execution"] = {"id": execution_id, "started_at": started_at.isoformat()}
    context["workflow"] = {"id": workflow_id, "version": workflow_version}
    return with_now(context, started_at)


def with_now(context: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The context with ``now`` (and ``now_plus_24h``) set to this moment."""
    return {
        **context,
        "now": now.isoformat(),
        "now_plus_24h": (now + timedelta(hours=24)).isoformat(),
    }


def merge_event(
    context: Mapping[str, Any],
    event_type: str,
    payload: Mapping[str, Any],
    *,
    step_id: str | None = None,
) -> dict[str, Any]:
    """The context after a waited-for event: its payload deep-merged at the top
    level (so ``quote.rep_decision`` becomes readable), kept whole under
    ``events.<event type>``, and recorded as the wait step's output."""
    merged = deep_merge(context, payload)
    merged = deep_merge(merged, {"events": {event_type: dict(payload)}})
    if step_id is not None:
        output = {"event_type": event_type, "payload": dict(payload)}
        merged = deep_merge(merged, {"steps": {step_id: {"output": output}}})
    return merged


def approval_context(
    step_id: str,
    *,
    status: str,
    approver: str | None,
    reason: str | None,
    decided_at: datetime | None,
) -> dict[str, Any]:
    """The context update recording an approval decision (``approvals.<step_id>``)."""
    decision = {
        "status": status,
        "approver": approver,
        "reason": reason,
        "decided_at": None if decided_at is None else decided_at.isoformat(),
    }
    return {"approvals": {step_id: decision}}


def error_context(step_id: str, error: Mapping[str, Any]) -> dict[str, Any]:
    """The context update when a failed step routes to ``on_error``: the error is
    readable as ``error`` and ``steps.<step_id>.error``."""
    return {"error": {"step_id": step_id, **error}, "steps": {step_id: {"error": dict(error)}}}
