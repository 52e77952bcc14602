"""The step graph of a definition: reachability and cycles without a way out.

Works on raw step dicts (before parsing) so that validation can report
problems at their paths; malformed steps and dangling edges are skipped here
(the step checks report them). See ``engine.validation`` for the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.definition import EDGE_KEYS
from engine.errors import Problem

# The successor that means "the execution ends here".
END = None


def successors(step: Mapping[str, Any]) -> set[str | None]:
    """Where the flow can go after ``step``; ``END`` when it can end there."""
    kind = step.get("type")
    edge = _edges(step)
    after = edge.get("next")
    found: set[str | None] = set()
    if edge.get("on_error") is not None:
        found.add(edge["on_error"])
    if kind == "condition":
        found.add(edge.get("on_true") or after)
        found.add(edge.get("on_false") or after)
    elif kind == "wait":
        found.add(after)
        wait = step.get("wait")
        can_time_out = (
            isinstance(wait, Mapping)
            and wait.get("event") is not None
            and (wait.get("timeout") is not None or step.get("timeout") is not None)
        )
        # A timed-out wait goes to on_timeout or fails the execution (an end).
        if can_time_out or edge.get("on_timeout") is not None:
            found.add(edge.get("on_timeout"))
    elif _creates_approval(step):
        found.add(edge.get("on_approve") or after)
        found.add(edge.get("on_reject"))
        found.add(edge.get("on_timeout"))
    else:
        found.add(after)
    return found


def _edges(step: Mapping[str, Any]) -> dict[str, str]:
    # Edges that are not strings are reported by the step checks; here they
    # are treated as absent.
    return {key: step[key] for key in EDGE_KEYS if isinstance(step.get(key), str)}


def _creates_approval(step: Mapping[str, Any]) -> bool:
    action = step.get("action")
    kind = action.get("type", action.get("action")) if isinstance(action, Mapping) else action
    items = step.get("execute")
    has_item = isinstance(items, list) and any(
        isinstance(i, Mapping) and i.get("type") == "create_approval_request" for i in items
    )
    return kind == "require_approval" or has_item


def graph_problems(steps: Sequence[Any], steps_path: str) -> list[Problem]:
    """Unreachable steps and cycles with no way out, at ``<steps_path>[i]``."""
    index: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for position, step in enumerate(steps):
        if isinstance(step, Mapping) and isinstance(step.get("id"), str):
            index.setdefault(step["id"], (position, step))
    if not index:
        return []
    # Only edges to known steps; END stays as the marker of a way to end.
    edges = {
        step_id: {t for t in successors(step) if t is END or (isinstance(t, str) and t in index)}
        for step_id, (_, step) in index.items()
    }
    problems = _unreachable(steps, index, edges, steps_path)
    problems += _trapped_cycles(index, edges, steps_path)
    return problems


def _reach(start: str, edges: Mapping[str, set[str | None]]) -> set[str]:
    seen = {start}
    pending = [start]
    while pending:
        for target in edges[pending.pop()]:
            if target is not END and target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def _unreachable(
    steps: Sequence[Any],
    index: Mapping[str, tuple[int, Mapping[str, Any]]],
    edges: Mapping[str, set[str | None]],
    steps_path: str,
) -> list[Problem]:
    first = steps[0]
    if not (isinstance(first, Mapping) and isinstance(first.get("id"), str)):
        return []
    if first["id"] not in index:
        return []
    reached = _reach(first["id"], edges)
    return [
        Problem(
            f"{steps_path}[{position}]",
            f"step {step_id!r} is unreachable from the first step {first['id']!r}",
        )
        for step_id, (position, _) in index.items()
        if step_id not in reached and steps[position] is index[step_id][1]
    ]


def _trapped_cycles(
    index: Mapping[str, tuple[int, Mapping[str, Any]]],
    edges: Mapping[str, set[str | None]],
    steps_path: str,
) -> list[Problem]:
    # Definitions are small (tens of steps): the strongly connected component
    # of a step is what it reaches that also reaches it back.
    reach = {step_id: _reach(step_id, edges) for step_id in index}
    reported: set[str] = set()
    problems = []
    for step_id in sorted(index, key=lambda s: index[s][0]):
        if step_id in reported:
            continue
        component = {other for other in reach[step_id] if step_id in reach[other]}
        is_cycle = len(component) > 1 or step_id in edges[step_id]
        if not is_cycle:
            continue
        reported |= component
        exits = {t for member in component for t in edges[member]} - component
        if exits:
            continue
        members = sorted(component, key=lambda s: index[s][0])
        loop = " -> ".join([*members, members[0]])
        problems.append(
            Problem(
                f"{steps_path}[{index[step_id][0]}]",
                f"steps {loop} form a cycle with no way out (no step in it can leave it or end)",
            )
        )
    return problems
