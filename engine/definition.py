"""The workflow definition model: canonical dicts in, frozen dataclasses out.

Two input layouts are accepted (SPEC §2): the wrapped one
``{workflow_id, version, name, ..., definition: {trigger, context, steps, timeout}}``
and the original service's flat one (``trigger``/``steps``... at the top). Both are
normalised to the wrapped, canonical form that is stored; the dataclasses are
parsed from that canonical ``definition`` dict. ``validation.validate_workflow``
must accept a raw workflow before these parsers are trusted with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from engine.duration import format_duration, parse_duration
from engine.errors import DefinitionError, Problem, StepError

STEP_TYPES = frozenset({"condition", "action", "execute", "parallel", "foreach", "wait"})
ACTION_TYPES = frozenset({"allow", "block", "execute", "require_approval"})
ITEM_TYPES = frozenset(
    {
        "notify",
        "webhook",
        "http_request",
        "create_record",
        "update_record",
        "delete_record",
        "create_approval_request",
        "set",
        "log",
    }
)
TRIGGER_TYPES = frozenset({"event", "schedule", "manual"})
BACKOFFS = frozenset({"fixed", "linear", "exponential"})
JOIN_STRATEGIES = frozenset({"all_must_pass", "any_can_pass", "best_effort"})
RETRY_CLASSES = frozenset({"*", "timeout", "5xx", "4xx", "connection"})
# Keys of a step that name another step.
# Execute items that reach outside Postgres: a step with any of them runs with effects.
EFFECT_ITEMS = frozenset({"notify", "webhook", "http_request"})
EDGE_KEYS = ("next", "on_true", "on_false", "on_timeout", "on_error", "on_approve", "on_reject")

DEFAULT_WORKFLOW_TIMEOUT = timedelta(hours=1)
DEFAULT_FOREACH_CONCURRENCY = 10
DEFAULT_FOREACH_LIMIT = 1000
# What jitter=true means: each delay is shortened by up to half, at random.
DEFAULT_JITTER = 0.5

_STEP_KEYS = frozenset(
    {"id", "type", "name", "retry", "timeout", "metadata", "condition", "rule_id"}
    | {"action", "execute", "parallel", "foreach", "wait", *EDGE_KEYS}
)


def wants_enabled(raw: Mapping[str, Any]) -> bool | None:
    """The ``enabled`` flag the caller asked for, if any (it is not part of a definition)."""
    enabled = raw.get("enabled")
    return enabled if isinstance(enabled, bool) else None


def is_wrapped(raw: Mapping[str, Any]) -> bool:
    """Whether ``raw`` uses the wrapped layout (``definition: {...}``) rather than the flat one."""
    return "definition" in raw


def normalise_workflow(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical stored form of a workflow given in either layout."""
    body = raw["definition"] if is_wrapped(raw) else raw
    version = raw.get("version")
    return {
        "workflow_id": raw.get("workflow_id"),
        "version": None if version is None else str(version),
        "name": raw.get("name"),
        "description": raw.get("description"),
        "tags": list(raw.get("tags") or []),
        "definition": normalise_definition(body),
    }


def normalise_definition(body: Mapping[str, Any]) -> dict[str, Any]:
    context = body.get("context")
    load = context.get("load") if isinstance(context, Mapping) else None
    extra_context = {k: v for k, v in (context or {}).items() if k != "load"}
    return {
        "trigger": dict(body.get("trigger") or {}),
        "context": {**extra_context, "load": list(load or [])},
        "steps": [normalise_step(step) for step in body.get("steps") or []],
        "timeout": body.get("timeout", format_duration(DEFAULT_WORKFLOW_TIMEOUT)),
    }


def normalise_step(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical step: ``action`` as ``{"type", "reason", ...}``, bodies normalised too."""
    step = dict(raw)
    action = step.get("action")
    if isinstance(action, str):
        step["action"] = {"type": action, "reason": None}
    elif isinstance(action, Mapping):
        rest = {k: v for k, v in action.items() if k not in ("type", "action", "reason")}
        kind = action.get("type", action.get("action"))
        step["action"] = {"type": kind, "reason": action.get("reason"), **rest}
    for key in ("parallel", "foreach"):
        block = step.get(key)
        if isinstance(block, Mapping) and isinstance(block.get("steps"), list):
            steps = [normalise_step(s) if isinstance(s, Mapping) else s for s in block["steps"]]
            step[key] = {**block, "steps": steps}
    wait = step.get("wait")
    # The original service put on_timeout inside the wait block; the step-level
    # key is canonical, like every other edge.
    if isinstance(wait, Mapping) and "on_timeout" in wait:
        step.setdefault("on_timeout", wait["on_timeout"])
        step["wait"] = {k: v for k, v in wait.items() if k != "on_timeout"}
    return step


@dataclass(frozen=True)
class Trigger:
    type: str
    event: str | None = None
    filter: Mapping[str, Any] | None = None
    cron: str | None = None
    timezone: str = "UTC"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trigger:
        return cls(
            type=data["type"],
            event=data.get("event"),
            filter=data.get("filter"),
            cron=data.get("cron"),
            timezone=data.get("timezone") or "UTC",
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.event is not None:
            out["event"] = self.event
        if self.filter is not None:
            out["filter"] = self.filter
        if self.cron is not None:
            out["cron"] = self.cron
            out["timezone"] = self.timezone
        return out


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing step is retried. ``max_attempts`` counts the first attempt."""

    max_attempts: int = 1
    backoff: str = "fixed"
    initial_interval: timedelta = timedelta(seconds=1)
    max_interval: timedelta = timedelta(minutes=5)
    jitter: float = 0.0
    retry_on: tuple[str, ...] = ("*",)
    multiplier: float = 2.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryPolicy:
        jitter = data.get("jitter", False)
        defaults = cls()
        return cls(
            max_attempts=int(data.get("max_attempts", defaults.max_attempts)),
            backoff=data.get("backoff", defaults.backoff),
            initial_interval=_duration_or(data.get("initial_interval"), defaults.initial_interval),
            max_interval=_duration_or(data.get("max_interval"), defaults.max_interval),
            jitter=(DEFAULT_JITTER if jitter else 0.0)
            if isinstance(jitter, bool)
            else float(jitter),
            # An explicit empty list retries nothing; an absent one retries "*".
            retry_on=tuple(data.get("retry_on", defaults.retry_on)),
            multiplier=float(data.get("multiplier", defaults.multiplier)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "backoff": self.backoff,
            "initial_interval": format_duration(self.initial_interval),
            "max_interval": format_duration(self.max_interval),
            "jitter": self.jitter,
            "retry_on": list(self.retry_on),
            "multiplier": self.multiplier,
        }

    def delay(self, attempt: int, rng: Callable[[], float]) -> timedelta:
        """Wait before the attempt after ``attempt`` (1 = the first attempt just failed).

        fixed: ``initial``; linear: ``initial * attempt``; exponential:
        ``initial * multiplier ** (attempt - 1)``; all capped at ``max_interval``.
        Jitter ``j`` then shortens the delay by ``j * rng()`` of itself, so a
        jittered delay never exceeds the cap and never goes below ``(1 - j)``
        of the computed one. ``rng`` returns a float in [0, 1).
        """
        attempt = max(attempt, 1)
        initial = self.initial_interval.total_seconds()
        if self.backoff == "linear":
            seconds = initial * attempt
        elif self.backoff == "exponential":
            # Cap the exponent: 2 ** 10_000 overflows a float long before the
            # max_interval cap would apply.
            seconds = initial * self.multiplier ** min(attempt - 1, 64)
        else:
            seconds = initial
        seconds = min(seconds, self.max_interval.total_seconds())
        if self.jitter:
            seconds *= 1.0 - self.jitter * min(max(rng(), 0.0), 1.0)
        return timedelta(seconds=seconds)

    def applies_to(self, error: StepError) -> bool:
        """Whether this policy retries ``error``.

        ``*`` retries every error that is ``retryable`` (timeouts, 5xx,
        connection errors, 408/425/429); a class (``timeout``, ``5xx``, ``4xx``,
        ``connection``) or an exact error code retries matching errors even
        when they are not retryable by default (the author asked for it).
        """
        for wanted in self.retry_on:
            if wanted == "*":
                if error.retryable:
                    return True
            elif wanted in (error.error_class, error.code):
                return True
        return False


@dataclass(frozen=True)
class ActionSpec:
    type: str
    reason: str | None = None


@dataclass(frozen=True)
class ParallelSpec:
    steps: tuple[Step, ...]
    strategy: str = "all_must_pass"


@dataclass(frozen=True)
class ForeachSpec:
    items: Any
    steps: tuple[Step, ...]
    item_var: str = "item"
    index_var: str = "index"
    concurrency: int = DEFAULT_FOREACH_CONCURRENCY
    limit: int = DEFAULT_FOREACH_LIMIT
    strategy: str = "all_must_pass"


@dataclass(frozen=True)
class WaitSpec:
    """Either an event wait (``event``, optional ``match`` and ``timeout``) or a
    time wait (``duration`` or ``until``, the latter possibly a template)."""

    event: str | None = None
    match: Mapping[str, Any] | None = None
    timeout: timedelta | None = None
    duration: timedelta | None = None
    until: str | None = None


@dataclass(frozen=True)
class Step:
    id: str
    type: str
    name: str | None = None
    next: str | None = None
    on_error: str | None = None
    on_true: str | None = None
    on_false: str | None = None
    on_timeout: str | None = None
    on_approve: str | None = None
    on_reject: str | None = None
    retry: RetryPolicy | None = None
    timeout: timedelta | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    condition: Mapping[str, Any] | None = None
    rule_id: str | None = None
    action: ActionSpec | None = None
    execute: tuple[Mapping[str, Any], ...] = ()
    parallel: ParallelSpec | None = None
    foreach: ForeachSpec | None = None
    wait: WaitSpec | None = None
    # Keys this version does not know, kept so that a round trip loses nothing.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        step = normalise_step(data)
        action = step.get("action")
        return cls(
            id=step["id"],
            type=step["type"],
            name=step.get("name"),
            retry=RetryPolicy.from_dict(step["retry"]) if step.get("retry") else None,
            timeout=_duration_or(step.get("timeout"), None),
            metadata=dict(step.get("metadata") or {}),
            condition=step.get("condition"),
            rule_id=step.get("rule_id"),
            action=ActionSpec(action["type"], action.get("reason")) if action else None,
            execute=tuple(dict(item) for item in step.get("execute") or ()),
            parallel=_parallel(step.get("parallel")),
            foreach=_foreach(step.get("foreach")),
            wait=_wait(step.get("wait")),
            extra={k: v for k, v in step.items() if k not in _STEP_KEYS},
            **{key: step.get(key) for key in EDGE_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.name is not None:
            out["name"] = self.name
        if self.condition is not None:
            out["condition"] = self.condition
        if self.rule_id is not None:
            out["rule_id"] = self.rule_id
        if self.action is not None:
            out["action"] = {"type": self.action.type, "reason": self.action.reason}
        if self.execute:
            out["execute"] = [dict(item) for item in self.execute]
        if self.parallel is not None:
            out["parallel"] = {
                "strategy": self.parallel.strategy,
                "steps": [s.to_dict() for s in self.parallel.steps],
            }
        if self.foreach is not None:
            out["foreach"] = _foreach_dict(self.foreach)
        if self.wait is not None:
            out["wait"] = _wait_dict(self.wait)
        for key in EDGE_KEYS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.retry is not None:
            out["retry"] = self.retry.to_dict()
        if self.timeout is not None:
            out["timeout"] = format_duration(self.timeout)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return {**self.extra, **out}

    @property
    def body(self) -> tuple[Step, ...]:
        """The steps nested in a parallel or foreach step (empty otherwise)."""
        if self.parallel is not None:
            return self.parallel.steps
        if self.foreach is not None:
            return self.foreach.steps
        return ()

    @property
    def creates_approval(self) -> bool:
        """Whether running this step asks for an approval (the shell pre-allocates
        its id so that ``approval_url`` can be rendered in the step's messages)."""
        wants = self.action is not None and self.action.type == "require_approval"
        return wants or any(i.get("type") == "create_approval_request" for i in self.execute)

    @property
    def only_sets_context(self) -> bool:
        """Whether running this step can do nothing but read and set the context: no
        call out, record write, log line, wait, approval or fan-out."""
        return (
            self.type in {"condition", "action", "execute"}
            and not self.creates_approval
            and all(item.get("type") == "set" for item in self.execute)
        )

    @property
    def calls_out(self) -> bool:
        """Whether running this step reaches outside Postgres (HTTP, notifications)."""
        return self.type in {"action", "execute"} and any(
            item.get("type") in EFFECT_ITEMS for item in self.execute
        )

    def edges(self) -> dict[str, str]:
        """The steps this step names, by edge key."""
        return {key: getattr(self, key) for key in EDGE_KEYS if getattr(self, key) is not None}


@dataclass(frozen=True)
class Definition:
    trigger: Trigger
    context_load: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    timeout: timedelta = DEFAULT_WORKFLOW_TIMEOUT
    _index: Mapping[str, Step] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Step] = {}
        pending = list(self.steps)
        while pending:
            step = pending.pop()
            index.setdefault(step.id, step)
            pending.extend(step.body)
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Definition:
        """Parse a canonical ``definition`` dict (flat bodies are accepted too)."""
        try:
            body = normalise_definition(data)
            return cls(
                trigger=Trigger.from_dict(body["trigger"]),
                steps=tuple(Step.from_dict(s) for s in body["steps"]),
                context_load=tuple(body["context"]["load"]),
                timeout=_duration_or(body["timeout"], DEFAULT_WORKFLOW_TIMEOUT),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Callers validate first; this only guards against stored garbage.
            raise DefinitionError([Problem("", f"cannot parse definition: {exc!r}")]) from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger.to_dict(),
            "context": {"load": list(self.context_load)},
            "steps": [step.to_dict() for step in self.steps],
            "timeout": format_duration(self.timeout),
        }

    def step(self, step_id: str) -> Step:
        """The step with this id, top-level or inside a parallel/foreach body."""
        try:
            return self._index[step_id]
        except KeyError:
            raise KeyError(f"no step {step_id!r} in this definition") from None

    def has_step(self, step_id: str) -> bool:
        return step_id in self._index

    @property
    def first_step(self) -> Step:
        return self.steps[0]

    def run_mode(self, step: Step, branch_key: str = "") -> RunMode:
        """How the shell must run this step (or, with a branch key, this foreach item):
        the one place that says so; a step's ticket carries the answer."""
        loads_context = bool(self.context_load) and not branch_key and step is self.steps[0]
        if step.type == "foreach" and branch_key:
            calls_out = any(body.calls_out for body in step.body)
        else:
            calls_out = step.calls_out
        if calls_out or loads_context:
            return RunMode.EFFECTS
        if step.only_sets_context and not branch_key:
            return RunMode.PLAIN
        return RunMode.ATOMIC


class RunMode(StrEnum):
    """How a step runs (SPEC §1; docs/failure-modes.md). There are two ways, both
    ending in the shell's one transition writer:

    - atomic: the step touches nothing outside Postgres, so it runs inside the
      transaction that records its result. A PLAIN step (it can only read and set
      the context) is first tried on an unlocked read, written only if the row did
      not change meanwhile; otherwise it runs like any atomic step, under the lock.
    - effects: the step calls out (HTTP, notifications, the first step's
      `context.load` enrichment), so its attempt is claimed first, its effects go
      through the effects ledger, and its result is recorded last.
    """

    PLAIN = "plain"
    ATOMIC = "atomic"
    EFFECTS = "effects"


def _duration_or(value: Any, default: timedelta | None) -> Any:
    return default if value is None else parse_duration(value)


def _parallel(data: Mapping[str, Any] | None) -> ParallelSpec | None:
    if data is None:
        return None
    return ParallelSpec(
        steps=tuple(Step.from_dict(s) for s in data.get("steps") or ()),
        strategy=data.get("strategy") or "all_must_pass",
    )


def _foreach(data: Mapping[str, Any] | None) -> ForeachSpec | None:
    if data is None:
        return None
    return ForeachSpec(
        items=data.get("items"),
        steps=tuple(Step.from_dict(s) for s in data.get("steps") or ()),
        item_var=data.get("item_var") or "item",
        index_var=data.get("index_var") or "index",
        concurrency=int(data.get("concurrency", DEFAULT_FOREACH_CONCURRENCY)),
        limit=int(data.get("limit", DEFAULT_FOREACH_LIMIT)),
        strategy=data.get("strategy") or "all_must_pass",
    )


def _foreach_dict(spec: ForeachSpec) -> dict[str, Any]:
    return {
        "items": spec.items,
        "item_var": spec.item_var,
        "index_var": spec.index_var,
        "steps": [s.to_dict() for s in spec.steps],
        "concurrency": spec.concurrency,
        "limit": spec.limit,
        "strategy": spec.strategy,
    }


def _wait(data: Mapping[str, Any] | None) -> WaitSpec | None:
    if data is None:
        return None
    return WaitSpec(
        event=data.get("event"),
        match=data.get("match"),
        timeout=_duration_or(data.get("timeout"), None),
        duration=_duration_or(data.get("duration"), None),
        until=data.get("until"),
    )


def _wait_dict(spec: WaitSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.event is not None:
        out["event"] = spec.event
    if spec.match is not None:
        out["match"] = spec.match
    for key in ("timeout", "duration"):
        value = getattr(spec, key)
        if value is not None:
            out[key] = format_duration(value)
    if spec.until is not None:
        out["until"] = spec.until
    return out
