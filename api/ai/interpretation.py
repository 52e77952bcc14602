"""Description in, validated workflow out: ask the model, parse, validate, repair once.

No Flask here: the provider is passed in, so this runs the same against a real
model, a local wire-format server or a fake.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.ai.providers.chat import ChatMessage, ChatProvider, ChatRequest, Usage
from engine.errors import DefinitionError
from engine.validation import validate_workflow

MAX_ATTEMPTS = 2  # the first answer and one repair
NO_JSON = "the answer contained no JSON object"

EXAMPLE: dict[str, Any] = {
    "workflow_id": "large-order-review",
    "version": "1.0.0",
    "name": "Large order review",
    "description": "Orders over 1000 need a finance approval; others are logged.",
    "tags": ["orders"],
    "definition": {
        "trigger": {"type": "event", "event": "order.created"},
        "steps": [
            {
                "id": "is_large",
                "type": "condition",
                "condition": {"field": "order.total", "operator": "gt", "value": 1000},
                "on_true": "approve",
                "on_false": "log_small",
            },
            {
                "id": "approve",
                "type": "action",
                "action": {"type": "require_approval", "reason": "Large order"},
                "metadata": {"approver_role": "finance"},
                "on_approve": "notify",
            },
            {
                "id": "notify",
                "type": "execute",
                "execute": [
                    {
                        "type": "notify",
                        "recipients": ["email:{{ order.customer_email }}"],
                        "message": "Order {{ order.id }} was approved",
                    }
                ],
            },
            {
                "id": "log_small",
                "type": "execute",
                "execute": [{"type": "log", "message": "Order {{ order.id }} auto-accepted"}],
            },
        ],
    },
}

SYSTEM_PROMPT = f"""You write workflow definitions for the Intelligent Workflows platform.
Answer with exactly one JSON object and nothing else: no prose, no comments.

Shape: {{"workflow_id": slug, "version": "1.0.0", "name", "description", "tags": [],
"definition": {{"trigger", "context"?: {{"load": []}}, "steps": [...], "timeout"?: "1h"}}}}

Triggers: {{"type": "event", "event": "order.created" (exact or glob like "order.*"),
"filter"?: condition}} | {{"type": "schedule", "cron": "0 9 * * 1-5", "timezone": "UTC"}}
| {{"type": "manual"}}.
Conditions: {{"field": "order.total", "operator": "gte", "value": 100}} with operators
eq neq gt gte lt lte in not_in contains not_contains starts_with ends_with regex exists
not_exists is_empty; combine with {{"and": [...]}}, {{"or": [...]}}, {{"not": {{...}}}}.
Steps: each has a unique "id", a "type", optional "name", "next", "on_error", "timeout",
"retry": {{"max_attempts": 3, "backoff": "exponential", "initial_interval": "1s"}}.
- condition: "condition", "on_true", "on_false".
- action: "action": {{"type": "allow"|"block"|"require_approval", "reason"}}, optional
  "execute" list; require_approval takes "metadata": {{"approver_role": "finance"}} and
  may name "on_approve", "on_reject", "on_timeout".
- execute: "execute": [items]. Items: notify {{"recipients": ["email:a@b.c",
  "role:finance", "slack:#ops", "webhook:https://..."], "message", "subject"?}};
  webhook {{"url", "method", "headers"?, "body"?}}; create_record / update_record /
  delete_record {{"entity", "entity_id", "data"}}; set {{"values": {{}}}}; log {{"message"}};
  create_approval_request {{"entity", "entity_id", "data": {{"approver_role",
  "expires_in": "24h", "reason"}}}}. Each item is {{"type": ..., ...fields}}.
- wait: "wait": {{"event": "payment.received", "timeout": "1h"}} with "on_timeout", or
  "wait": {{"duration": "10m"}}.
- parallel: "parallel": {{"steps": [...], "strategy": "all_must_pass"}}.
- foreach: "foreach": {{"items": "{{{{ order.items }}}}", "item_var": "item", "steps": [...]}}.
Templates "{{{{ order.id }}}}" work in any string; the event payload's keys are top-level and
"steps.<id>.output" holds earlier outputs. Durations: 500ms 30s 5m 1h30m 2d.
The first step runs first; every step must be reachable; a step without "next" ends the
run. Step ids are identifiers (letters, digits, underscores).

Example:
{json.dumps(EXAMPLE, separators=(",", ":"))}
"""


@dataclass
class Interpretation:
    definition: dict[str, Any]
    valid: bool
    errors: dict[str, list[str]]
    attempts: int
    model: str
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class InterpretRequest:
    description: str
    workflow_id: str | None = None
    name: str | None = None
    model: str | None = None
    max_tokens: int = 4096
    temperature: float | None = 0.0


def interpret(provider: ChatProvider, ask: InterpretRequest) -> Interpretation:
    """Ask for a workflow; feed the validator's errors back once if the first answer fails."""
    messages = [ChatMessage("user", _first_prompt(ask))]
    usage = Usage()
    model = ask.model or provider.model
    candidate: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for attempt in range(1, MAX_ATTEMPTS + 1):
        completion = provider.complete(
            ChatRequest(
                messages=list(messages),
                max_tokens=ask.max_tokens,
                temperature=ask.temperature,
                model=ask.model,
                system=SYSTEM_PROMPT,
            )
        )
        usage += completion.usage
        model = completion.model
        candidate, errors, normalised = check_answer(completion.content, ask)
        if normalised is not None:
            return Interpretation(normalised, True, {}, attempt, model, usage)
        messages += [
            ChatMessage("assistant", completion.content),
            ChatMessage("user", _repair_prompt(errors)),
        ]
    return Interpretation(candidate, False, errors, MAX_ATTEMPTS, model, usage)


def check_answer(
    text: str, ask: InterpretRequest
) -> tuple[dict[str, Any], dict[str, list[str]], dict[str, Any] | None]:
    """(the candidate, its problems by path, the normalised workflow when valid)."""
    candidate = extract_json_object(text)
    if candidate is None:
        return {}, {"": [NO_JSON]}, None
    if ask.workflow_id:
        candidate["workflow_id"] = ask.workflow_id
    if ask.name:
        candidate["name"] = ask.name
    candidate.setdefault("version", "1.0.0")
    try:
        return candidate, {}, validate_workflow(candidate)
    except DefinitionError as exc:
        return candidate, exc.as_dict(), None


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The workflow object in a model's answer: bare, fenced, or inside prose."""
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for start in (i for i, char in enumerate(text) if char == "{"):
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _first_prompt(ask: InterpretRequest) -> str:
    lines = [f"Describe this process as a workflow:\n{ask.description.strip()}"]
    if ask.workflow_id:
        lines.append(f'Use "workflow_id": "{ask.workflow_id}".')
    if ask.name:
        lines.append(f'Use "name": {json.dumps(ask.name)}.')
    return "\n".join(lines)


def _repair_prompt(errors: Mapping[str, list[str]]) -> str:
    problems = "\n".join(
        f"- {path or '<root>'}: {message}"
        for path, messages in errors.items()
        for message in messages
    )
    return (
        "That workflow does not validate. Problems, by JSON path:\n"
        f"{problems}\n"
        "Answer again with the whole corrected workflow as one JSON object, and nothing else."
    )
