"""Validate a whole workflow and report every problem at its JSON path.

Paths follow the layout the caller used: ``definition.steps[2].next`` for the
wrapped layout, ``steps[2].next`` for the flat one, ``workflow_id`` at the top.

Graph rules: every step must be reachable from the first one (steps in a
parallel/foreach body are reached through their parent); a cycle is an error
when no step in it has a way out, i.e. no possible successor outside the
cycle and no way to end. Possible successors: a condition's ``on_true`` /
``on_false`` (a missing branch falls through to ``next`` or ends); a wait's
``next``, and for an event wait with a timeout its ``on_timeout`` (or the end);
a step that creates an approval: ``on_approve``/``next``, ``on_reject`` and
``on_timeout`` (each missing one ends the execution); any other step's
``next`` (none: the end); and ``on_error`` everywhere. Failures without
``on_error`` are not counted as exits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.condition import condition_problems
from engine.definition import (
    ACTION_TYPES,
    BACKOFFS,
    EDGE_KEYS,
    ITEM_TYPES,
    JOIN_STRATEGIES,
    STEP_TYPES,
    TRIGGER_TYPES,
    is_wrapped,
    normalise_definition,
    normalise_step,
    normalise_workflow,
)
from engine.duration import parse_duration
from engine.errors import DefinitionError, Problem
from engine.graph import graph_problems
from engine.outcome import parse_instant
from engine.port import HTTP_METHODS
from engine.schedule import timezone_problem, validate_cron
from engine.templating import compile_problems, contains_template

WORKFLOW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ATTEMPTS = 100
MAX_FOREACH_CONCURRENCY = 100
MAX_FOREACH_LIMIT = 10_000
# Steps a parallel branch or foreach body may be: no routing, waiting or approvals.
BODY_STEP_TYPES = frozenset({"condition", "action", "execute"})
REQUIRED_ITEM_FIELDS: Mapping[str, tuple[str, ...]] = {
    "notify": ("recipients", "message"),
    "webhook": ("url",),
    "http_request": ("url",),
    "create_record": ("entity",),
    "update_record": ("entity", "entity_id"),
    "delete_record": ("entity", "entity_id"),
    "create_approval_request": (),
    "set": ("values",),
    "log": ("message",),
}


def validate_workflow(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical workflow, or ``DefinitionError`` with every problem found."""
    if not isinstance(raw, Mapping):
        raise DefinitionError([Problem("", "a workflow must be a JSON object")])
    problems = _workflow_problems(raw)
    if is_wrapped(raw):
        body = raw["definition"]
        if isinstance(body, Mapping):
            problems += definition_problems(body, "definition")
        else:
            problems.append(Problem("definition", "must be an object {trigger, steps, ...}"))
    else:
        problems += definition_problems(raw, "")
    if problems:
        raise DefinitionError(problems)
    return normalise_workflow(raw)


def validate_definition(
    definition: Mapping[str, Any], path_prefix: str = "definition"
) -> dict[str, Any]:
    """The canonical ``definition`` dict, or ``DefinitionError``."""
    if not isinstance(definition, Mapping):
        raise DefinitionError([Problem(path_prefix, "must be an object {trigger, steps, ...}")])
    problems = definition_problems(definition, path_prefix)
    if problems:
        raise DefinitionError(problems)
    return normalise_definition(definition)


def _is_one_of(value: Any, choices: frozenset[str]) -> bool:
    # JSON can put a list or an object anywhere; those are not hashable.
    return isinstance(value, str) and value in choices


def _at(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _workflow_problems(raw: Mapping[str, Any]) -> list[Problem]:
    problems = []
    workflow_id = raw.get("workflow_id")
    if not isinstance(workflow_id, str) or not workflow_id:
        problems.append(Problem("workflow_id", "is required: a non-empty string"))
    elif not WORKFLOW_ID.fullmatch(workflow_id):
        problems.append(
            Problem("workflow_id", "use letters, digits, '_', '-' and '.' (at most 128)")
        )
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, str | int):
        problems.append(Problem("version", "is required: a string such as '1.0.0' or an integer"))
    elif isinstance(version, int) and version < 0:
        problems.append(Problem("version", "must not be negative"))
    elif isinstance(version, str) and not 0 < len(version.strip()) <= 64:
        problems.append(Problem("version", "must be 1 to 64 characters"))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", "is required: a non-empty string"))
    if raw.get("description") is not None and not isinstance(raw["description"], str):
        problems.append(Problem("description", "must be a string"))
    tags = raw.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
    ):
        problems.append(Problem("tags", "must be a list of strings"))
    if raw.get("enabled") is not None and not isinstance(raw["enabled"], bool):
        problems.append(Problem("enabled", "must be true or false"))
    return problems


def definition_problems(body: Mapping[str, Any], prefix: str = "definition") -> list[Problem]:
    """Every problem of a ``{trigger, context, steps, timeout}`` body."""
    problems = _trigger_problems(body.get("trigger"), _at(prefix, "trigger"))
    context = body.get("context")
    if context is not None:
        load = context.get("load") if isinstance(context, Mapping) else None
        if not isinstance(context, Mapping):
            problems.append(Problem(_at(prefix, "context"), "must be an object {load: [...]}"))
        elif load is not None and (
            not isinstance(load, list) or not all(isinstance(r, str) and r for r in load)
        ):
            problems.append(
                Problem(_at(prefix, "context.load"), "must be a list of resource names")
            )
    problems += _duration_problems(body.get("timeout"), _at(prefix, "timeout"))
    steps = body.get("steps")
    if not isinstance(steps, list) or not steps:
        problems.append(Problem(_at(prefix, "steps"), "is required: a non-empty list of steps"))
        return problems
    # Validate what will be stored: the normaliser moves legacy forms (an action
    # named by "action", on_timeout inside the wait block) to their canonical
    # place, and the checks and the graph read that place. Paths stay the
    # caller's: normalising keeps every step at its index.
    canonical = [normalise_step(s) if isinstance(s, Mapping) else s for s in steps]
    checker = _StepChecker(canonical)
    for index, (step, raw) in enumerate(zip(canonical, steps, strict=True)):
        path = f"{_at(prefix, 'steps')}[{index}]"
        checker.check(step, path, in_body=False, raw=raw)
        if isinstance(step, Mapping):
            checker.problems += compile_problems(step, path)
    problems += checker.problems
    problems += graph_problems(canonical, _at(prefix, "steps"))
    return problems


def _trigger_problems(trigger: Any, path: str) -> list[Problem]:
    if not isinstance(trigger, Mapping):
        return [Problem(path, "is required: an object with a type (event, schedule, manual)")]
    kind = trigger.get("type")
    if not _is_one_of(kind, TRIGGER_TYPES):
        known = ", ".join(sorted(TRIGGER_TYPES))
        return [Problem(f"{path}.type", f"unknown trigger type {kind!r}; use one of {known}")]
    problems = []
    if kind == "event":
        event = trigger.get("event")
        if not isinstance(event, str) or not event.strip():
            problems.append(
                Problem(f"{path}.event", "an event trigger needs an event type (or a glob)")
            )
        if trigger.get("filter") is not None:
            problems += condition_problems(trigger["filter"], f"{path}.filter")
            problems += compile_problems(trigger["filter"], f"{path}.filter")
    if kind == "schedule":
        cron = trigger.get("cron")
        if cron is None:
            problems.append(Problem(f"{path}.cron", "a schedule trigger needs a cron expression"))
        else:
            problems += [Problem(f"{path}.cron", m) for m in validate_cron(cron, "UTC")]
    if trigger.get("timezone") is not None:
        tz_problem = timezone_problem(trigger["timezone"])
        if tz_problem is not None:
            problems.append(Problem(f"{path}.timezone", tz_problem))
    return problems


def _duration_problems(value: Any, path: str, *, templated: bool = False) -> list[Problem]:
    if value is None or (templated and isinstance(value, str) and contains_template(value)):
        return []
    try:
        parse_duration(value)
    except ValueError as exc:
        return [Problem(path, str(exc))]
    return []


def _int_problems(value: Any, path: str, low: int, high: int) -> list[Problem]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return [Problem(path, f"must be an integer from {low} to {high}")]
    return []


class _StepChecker:
    """Checks steps one by one, remembering ids for duplicate and reference checks."""

    def __init__(self, top_level: list[Any]) -> None:
        self.problems: list[Problem] = []
        self.seen: dict[str, str] = {}
        self.targets = {
            s["id"] for s in top_level if isinstance(s, Mapping) and isinstance(s.get("id"), str)
        }

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def check(self, step: Any, path: str, *, in_body: bool, raw: Any) -> None:
        """Check a normalised step; `raw` is the step as the caller wrote it, for
        what normalising erases (a conflict between a legacy and a canonical key)."""
        if not isinstance(step, Mapping):
            self.add(path, "a step must be an object")
            return
        self.check_identity(step, path)
        kind = step.get("type")
        if not _is_one_of(kind, STEP_TYPES):
            known = ", ".join(sorted(STEP_TYPES))
            self.add(f"{path}.type", f"unknown step type {kind!r}; use one of {known}")
            return
        if in_body and kind not in BODY_STEP_TYPES:
            self.add(f"{path}.type", f"a {kind} step cannot be inside a parallel/foreach body")
            return
        self.check_edges(step, path, in_body=in_body)
        if step.get("retry") is not None:
            self.check_retry(step["retry"], f"{path}.retry")
        self.problems += _duration_problems(step.get("timeout"), f"{path}.timeout")
        if step.get("metadata") is not None and not isinstance(step["metadata"], Mapping):
            self.add(f"{path}.metadata", "must be an object")
        getattr(self, f"check_{kind}")(step, path, in_body, raw)

    def check_identity(self, step: Mapping[str, Any], path: str) -> None:
        step_id = step.get("id")
        if not isinstance(step_id, str) or not step_id.strip():
            self.add(f"{path}.id", "is required: a non-empty string")
        elif step_id in self.seen:
            self.add(f"{path}.id", f"duplicate step id {step_id!r} (first at {self.seen[step_id]})")
        else:
            self.seen[step_id] = path
        if step.get("name") is not None and not isinstance(step["name"], str):
            self.add(f"{path}.name", "must be a string")

    def check_edges(self, step: Mapping[str, Any], path: str, *, in_body: bool) -> None:
        for key in EDGE_KEYS:
            target = step.get(key)
            if target is None:
                continue
            if in_body:
                self.add(
                    f"{path}.{key}",
                    f"steps inside a parallel/foreach body do not route; remove {key!r}",
                )
            elif not isinstance(target, str):
                self.add(f"{path}.{key}", "must be a step id")
            elif target not in self.targets:
                self.add(f"{path}.{key}", f"unknown step {target!r}")

    def check_retry(self, retry: Any, path: str) -> None:
        if not isinstance(retry, Mapping):
            self.add(path, "must be an object {max_attempts, backoff, ...}")
            return
        self.problems += _int_problems(
            retry.get("max_attempts"), f"{path}.max_attempts", 1, MAX_ATTEMPTS
        )
        backoff = retry.get("backoff")
        if backoff is not None and not _is_one_of(backoff, BACKOFFS):
            known = ", ".join(sorted(BACKOFFS))
            self.add(f"{path}.backoff", f"unknown backoff {backoff!r}; use one of {known}")
        for key in ("initial_interval", "max_interval"):
            self.problems += _duration_problems(retry.get(key), f"{path}.{key}")
        jitter = retry.get("jitter")
        fraction = isinstance(jitter, int | float) and 0 <= jitter <= 1
        if jitter is not None and not fraction:
            self.add(f"{path}.jitter", "must be true/false or a fraction from 0 to 1")
        retry_on = retry.get("retry_on")
        if retry_on is not None and (
            not isinstance(retry_on, list) or not all(isinstance(c, str) and c for c in retry_on)
        ):
            self.add(f"{path}.retry_on", "must be a list of error classes or codes")
        multiplier = retry.get("multiplier")
        if multiplier is not None and (
            isinstance(multiplier, bool)
            or not isinstance(multiplier, int | float)
            or multiplier < 1
        ):
            self.add(f"{path}.multiplier", "must be a number of at least 1")

    def check_condition(
        self, step: Mapping[str, Any], path: str, in_body: bool, raw: Mapping[str, Any]
    ) -> None:
        has_condition, has_rule = "condition" in step, "rule_id" in step
        if has_condition == has_rule:
            self.add(path, "a condition step needs exactly one of 'condition' or 'rule_id'")
        elif has_condition:
            self.problems += condition_problems(step["condition"], f"{path}.condition")
        elif not isinstance(step["rule_id"], str) or not step["rule_id"]:
            self.add(f"{path}.rule_id", "must be a non-empty string")

    def check_action(
        self, step: Mapping[str, Any], path: str, in_body: bool, raw: Mapping[str, Any]
    ) -> None:
        action, written = step.get("action"), raw.get("action")
        kind: Any
        if isinstance(written, str):
            kind, kind_path = written, f"{path}.action"
        elif isinstance(action, Mapping) and isinstance(written, Mapping):
            key = "type" if "type" in written else "action"
            kind, kind_path = action.get("type"), f"{path}.action.{key}"
            both = "type" in written and "action" in written
            if both and written["type"] != written["action"]:
                self.add(f"{path}.action", "'type' and 'action' name different actions")
            if action.get("reason") is not None and not isinstance(action["reason"], str):
                self.add(f"{path}.action.reason", "must be a string")
        else:
            self.add(
                f"{path}.action", 'is required: {"type": allow|block|execute|require_approval}'
            )
            return
        if not _is_one_of(kind, ACTION_TYPES):
            known = ", ".join(sorted(ACTION_TYPES))
            self.add(kind_path, f"unknown action {kind!r}; use one of {known}")
        elif in_body and kind == "require_approval":
            self.add(kind_path, "a parallel/foreach body step cannot require an approval")
        if step.get("execute") is not None:
            self.check_items(step["execute"], f"{path}.execute", in_body)

    def check_execute(
        self, step: Mapping[str, Any], path: str, in_body: bool, raw: Mapping[str, Any]
    ) -> None:
        items = step.get("execute")
        if not isinstance(items, list) or not items:
            self.add(f"{path}.execute", "is required: a non-empty list of items")
            return
        self.check_items(items, f"{path}.execute", in_body)

    def check_items(self, items: Any, path: str, in_body: bool) -> None:
        if not isinstance(items, list):
            self.add(path, "must be a list of items")
            return
        approvals = 0
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                self.add(item_path, "an execute item must be an object")
                continue
            kind = item.get("type")
            if not isinstance(kind, str) or kind not in ITEM_TYPES:
                known = ", ".join(sorted(ITEM_TYPES))
                self.add(
                    f"{item_path}.type", f"unknown execute item type {kind!r}; use one of {known}"
                )
                continue
            if kind == "create_approval_request":
                approvals += 1
                if in_body:
                    self.add(f"{item_path}.type", "a parallel/foreach body cannot create approvals")
                elif approvals > 1:
                    self.add(f"{item_path}.type", "a step creates one approval; split the step")
            for required in REQUIRED_ITEM_FIELDS[kind]:
                if item.get(required) in (None, "", []):
                    self.add(f"{item_path}.{required}", f"is required by {kind}")
            self.check_item_fields(kind, item, item_path)

    def check_item_fields(self, kind: str, item: Mapping[str, Any], path: str) -> None:
        recipients = item.get("recipients")
        if kind == "notify" and recipients is not None:
            listed = recipients if isinstance(recipients, list) else [recipients]
            if not all(isinstance(r, str) for r in listed):
                self.add(f"{path}.recipients", "must be a list of strings")
        method = item.get("method")
        templated = isinstance(method, str) and contains_template(method)
        known = isinstance(method, str) and method.upper() in HTTP_METHODS
        if method is not None and not templated and not known:
            self.add(f"{path}.method", f"unsupported HTTP method {method!r}")
        for key in ("headers", "data", "values"):
            if item.get(key) is not None and not isinstance(item[key], Mapping | str):
                self.add(f"{path}.{key}", "must be an object")
        self.problems += _duration_problems(item.get("timeout"), f"{path}.timeout")
        data = item.get("data")
        if kind == "create_approval_request" and isinstance(data, Mapping):
            self.problems += _duration_problems(
                data.get("expires_in"), f"{path}.data.expires_in", templated=True
            )

    def check_parallel(
        self, step: Mapping[str, Any], path: str, in_body: bool, raw: Mapping[str, Any]
    ) -> None:
        block = step.get("parallel")
        if not isinstance(block, Mapping):
            self.add(f"{path}.parallel", "is required: {strategy, steps: [...]}")
            return
        self.check_strategy(block, f"{path}.parallel")
        self.check_body(block.get("steps"), raw["parallel"].get("steps"), f"{path}.parallel.steps")

    def check_foreach(
        self, step: Mapping[str, Any], path: str, in_body: bool, raw: Mapping[str, Any]
    ) -> None:
        block = step.get("foreach")
        if not isinstance(block, Mapping):
            self.add(f"{path}.foreach", "is required: {items, item_var, steps: [...]}")
            return
        items = block.get("items")
        if not isinstance(items, str | list) or items == "":
            self.add(f"{path}.foreach.items", "is required: a list or a template giving one")
        for key in ("item_var", "index_var"):
            name = block.get(key)
            if name is not None and not (isinstance(name, str) and IDENTIFIER.fullmatch(name)):
                self.add(f"{path}.foreach.{key}", "must be an identifier such as 'item'")
        self.problems += _int_problems(
            block.get("concurrency"), f"{path}.foreach.concurrency", 1, MAX_FOREACH_CONCURRENCY
        )
        self.problems += _int_problems(
            block.get("limit"), f"{path}.foreach.limit", 1, MAX_FOREACH_LIMIT
        )
        self.check_strategy(block, f"{path}.foreach")
        self.check_body(block.get("steps"), raw["foreach"].get("steps"), f"{path}.foreach.steps")

    def check_strategy(self, block: Mapping[str, Any], path: str) -> None:
        strategy = block.get("strategy")
        if strategy is not None and not _is_one_of(strategy, JOIN_STRATEGIES):
            known = ", ".join(sorted(JOIN_STRATEGIES))
            self.add(f"{path}.strategy", f"unknown strategy {strategy!r}; use one of {known}")

    def check_body(self, steps: Any, written: Any, path: str) -> None:
        if not isinstance(steps, list) or not steps:
            self.add(path, "is required: a non-empty list of steps")
            return
        for index, (step, raw) in enumerate(zip(steps, written, strict=True)):
            self.check(step, f"{path}[{index}]", in_body=True, raw=raw)

    def check_wait(
        self, step: Mapping[str, Any], path: str, in_body: bool, raw: Mapping[str, Any]
    ) -> None:
        wait = step.get("wait")
        if not isinstance(wait, Mapping):
            self.add(
                f"{path}.wait", "is required: {event, match?, timeout?} or {duration} or {until}"
            )
            return
        legacy = raw["wait"].get("on_timeout")
        if legacy is not None and raw.get("on_timeout") not in (None, legacy):
            self.add(f"{path}.wait.on_timeout", "differs from the step's on_timeout; give one")
        modes = [key for key in ("event", "duration", "until") if wait.get(key) is not None]
        if len(modes) != 1:
            self.add(f"{path}.wait", "needs exactly one of 'event', 'duration' or 'until'")
        event = wait.get("event")
        if event is not None and (not isinstance(event, str) or not event.strip()):
            self.add(f"{path}.wait.event", "must be an event type")
        if wait.get("match") is not None:
            self.problems += condition_problems(wait["match"], f"{path}.wait.match")
        for key in ("timeout", "duration"):
            self.problems += _duration_problems(wait.get(key), f"{path}.wait.{key}")
        until = wait.get("until")
        if until is not None and not (isinstance(until, str) and contains_template(until)):
            try:
                parse_instant(until)
            except (TypeError, ValueError):
                self.add(f"{path}.wait.until", "must be an ISO 8601 date-time or a template")
