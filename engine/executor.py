"""Run one step: the functional core of a step task.

``run_step`` renders the step against the context, talks to the outside world
only through ``StepPorts``, and returns a ``StepOutcome``. It never waits and
never creates an approval itself: those come back as requests. Parallel and
foreach steps fan out into several tasks; they are planned and joined with the
helpers of ``engine.fanout`` (re-exported here), not run by ``run_step``.

Context updates: the outcome's ``context_updates`` already holds
``steps.<step_id>.output`` and the values of ``set`` items; the caller
deep-merges it into the execution context.

Idempotency: each item that has an effect gets ``<idempotency_key>:<item index>``
(the key itself is ``<execution id>:<step id>:<attempt group>``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.condition import RuleLookup, evaluate_with_trace
from engine.context import deep_merge
from engine.definition import Step
from engine.errors import EngineError, StepError, TemplateError, UnknownRuleError
from engine.fanout import (
    foreach_body,
    item_outcome,
    join_foreach,
    join_parallel,
    plan_foreach,
    plan_parallel,
)
from engine.item import ITEM_RUNNERS, ItemCall, approval_expiry, approval_from_item
from engine.outcome import (
    ApprovalRequest,
    BranchOutcome,
    JoinDecision,
    StepOutcome,
    WaitRequest,
    parse_instant,
)
from engine.port import HttpRequest, HttpResponse, Notification, StepPorts
from engine.state import ExecutionResult
from engine.templating import TemplateRenderer

__all__ = [
    "ACTION_RESULTS",
    "ApprovalRequest",
    "BranchOutcome",
    "HttpRequest",
    "HttpResponse",
    "JoinDecision",
    "Notification",
    "StepOutcome",
    "StepPorts",
    "WaitRequest",
    "foreach_body",
    "item_outcome",
    "join_foreach",
    "join_parallel",
    "plan_foreach",
    "plan_parallel",
    "run_step",
]

# The result each action sets. require_approval sets none: the approval decides.
ACTION_RESULTS: Mapping[str, ExecutionResult | None] = {
    "allow": ExecutionResult.ALLOWED,
    "block": ExecutionResult.BLOCKED,
    "execute": ExecutionResult.EXECUTED,
    "require_approval": None,
}


@dataclass(frozen=True)
class _Run:
    """Everything one step run needs."""

    step: Step
    context: Mapping[str, Any]
    ports: StepPorts
    renderer: TemplateRenderer
    rules: RuleLookup | None
    idempotency_key: str


_Runner = Callable[[_Run], StepOutcome]


def run_step(
    step: Step,
    context: Mapping[str, Any],
    ports: StepPorts,
    renderer: TemplateRenderer,
    *,
    rules: RuleLookup | None = None,
    idempotency_key: str,
) -> StepOutcome:
    """Run ``step`` once. Raises ``StepError`` when it (or any of its items) fails."""
    runner = _RUNNERS.get(step.type)
    if runner is None:
        raise EngineError(
            f"step {step.id!r} of type {step.type!r} is not run by run_step"
            " (parallel and foreach steps are planned and joined with engine.fanout)"
        )
    try:
        return runner(_Run(step, context, ports, renderer, rules, idempotency_key))
    except TemplateError as exc:
        raise StepError("template", str(exc), details={"step_id": step.id}) from exc
    except UnknownRuleError as exc:
        raise StepError("not_found", str(exc), details={"rule_id": exc.rule_id}) from exc


def _run_condition(run: _Run) -> StepOutcome:
    step, context, renderer = run.step, run.context, run.renderer
    condition = step.condition if step.condition is not None else {"rule_id": step.rule_id}
    verdict, leaves = evaluate_with_trace(
        condition, context, render=lambda value: renderer.render(value, context), rules=run.rules
    )
    # A missing branch falls through to next; no next ends the execution.
    chosen = step.on_true if verdict else step.on_false
    output = {"result": verdict}
    return StepOutcome(
        output=output,
        next_step_id=chosen or step.next,
        context_updates=_output_update(step, output),
        decisions=[leaf.to_dict() for leaf in leaves],
        input={"condition": renderer.render_for_trace(condition, context)},
        condition_result=verdict,
    )


def _run_wait(run: _Run) -> StepOutcome:
    step, context, renderer = run.step, run.context, run.renderer
    spec = step.wait
    if spec is None:
        raise StepError("validation", f"wait step {step.id!r} has no wait block")
    until = None
    if spec.until is not None:
        rendered = renderer.render(spec.until, context)
        try:
            until = parse_instant(str(rendered))
        except ValueError as exc:
            raise StepError(
                "validation", f"wait.until {rendered!r} is not an ISO date-time"
            ) from exc
    request = WaitRequest(
        event=spec.event,
        # Match values are rendered now, against the waiting execution; the
        # field paths are read later from the new event's payload.
        match=None if spec.match is None else renderer.render(spec.match, context),
        timeout=spec.timeout if spec.timeout is not None else step.timeout,
        duration=spec.duration,
        until=until,
    )
    return StepOutcome(
        output={"wait": request.to_dict()},
        next_step_id=step.next,
        wait=request,
        input=renderer.render_for_trace({"wait": request.to_dict()}, context),
    )


def _run_items_step(run: _Run) -> StepOutcome:
    step, context, renderer = run.step, run.context, run.renderer
    """Action and execute steps: run the execute list in order, then decide."""
    action = step.action.type if step.action is not None else "execute"
    reason = None
    if step.action is not None and step.action.reason is not None:
        reason = str(renderer.render(step.action.reason, context))
    role = step.metadata.get("approver_role")
    items = _ItemsRun(step, context, run.ports, renderer, run.idempotency_key)
    for index, item in enumerate(step.execute):
        items.run_item(index, item, fallback_role=role, fallback_reason=reason)
    approval = items.approval
    if approval is None and action == "require_approval":
        approval = _approval_from_metadata(step, context, renderer, reason)
    output: dict[str, Any] = {"results": items.results}
    if step.action is not None:
        output = {"action": action, "reason": reason, **output}
    return StepOutcome(
        output=output,
        next_step_id=step.next,
        result=ACTION_RESULTS[action],
        context_updates=deep_merge(items.updates, _output_update(step, output)),
        approval=approval,
        input={"action": action, "reason": reason, "execute": items.inputs},
        reason=reason,
    )


class _ItemsRun:
    """Working state while one step's execute list runs."""

    def __init__(
        self,
        step: Step,
        context: Mapping[str, Any],
        ports: StepPorts,
        renderer: TemplateRenderer,
        idempotency_key: str,
    ) -> None:
        self.step = step
        self.context = context
        self.ports = ports
        self.renderer = renderer
        self.key = idempotency_key
        self.results: list[Any] = []
        self.inputs: list[Any] = []
        self.updates: dict[str, Any] = {}
        self.approval: ApprovalRequest | None = None

    def working_context(self) -> dict[str, Any]:
        # Later items see earlier set values and earlier items' outputs.
        partial = {"steps": {self.step.id: {"output": {"results": list(self.results)}}}}
        return deep_merge(deep_merge(self.context, self.updates), partial)

    def run_item(
        self,
        index: int,
        item: Mapping[str, Any],
        *,
        fallback_role: str | None,
        fallback_reason: str | None,
    ) -> None:
        context = self.working_context()
        trace_input = self.renderer.render_for_trace(item, context)
        self.inputs.append(trace_input)
        rendered = self.renderer.render(item, context)
        kind = item.get("type")
        try:
            if kind == "create_approval_request":
                self.approval = approval_from_item(
                    rendered, fallback_role=fallback_role, fallback_reason=fallback_reason
                )
                output: Any = {"approval_requested": trace_input.get("data") or {}}
            else:
                runner = ITEM_RUNNERS.get(str(kind))
                if runner is None:
                    raise StepError("validation", f"unknown execute item type {kind!r}")
                call = ItemCall(self.ports, f"{self.key}:{index}", self.step.timeout)
                output = runner(rendered, call)
        except StepError as exc:
            raise exc.with_details(step_id=self.step.id, item=index, item_type=kind) from exc
        if kind == "set":
            self.updates = deep_merge(self.updates, output["values"])
            output = {"values": trace_input.get("values")}
        elif kind == "log":
            output = {"message": trace_input.get("message")}
        self.results.append(output)


def _approval_from_metadata(
    step: Step, context: Mapping[str, Any], renderer: TemplateRenderer, reason: str | None
) -> ApprovalRequest:
    metadata = renderer.render(dict(step.metadata), context)
    entity_id = metadata.get("entity_id")
    return ApprovalRequest(
        entity=str(metadata.get("entity") or "execution"),
        entity_id=None if entity_id in (None, "") else str(entity_id),
        approver_role=metadata.get("approver_role"),
        expires_in=approval_expiry(metadata.get("expires_in")),
        reason=reason,
        data=metadata,
    )


def _output_update(step: Step, output: Any) -> dict[str, Any]:
    return {"steps": {step.id: {"output": output}}}


_RUNNERS: Mapping[str, _Runner] = {
    "condition": _run_condition,
    "wait": _run_wait,
    "action": _run_items_step,
    "execute": _run_items_step,
}
