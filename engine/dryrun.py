"""Dry run: follow a workflow's whole path on a sample payload, with no side effects.

Ports are recorders: HTTP calls are recorded as "would call" and answered with
a synthetic ``200 {}`` (or by a scripted ``respond`` function, to rehearse
failures); notifications, records and logs are recorded. Retries happen at
once (their delays are reported, not slept). Parallel branches and foreach
items run one after the other and are joined as the real run would.

An approval or a wait stops the run with status ``waiting`` and what it would
wait for, unless the caller supplies the decision: ``approvals`` maps a step id
to an ``ApprovalStatus``; ``events`` maps a wait step id to the event payload
that arrives (``None``: the wait times out; any mapping ends a time wait).
``context.load`` fetches nothing: a resource the caller supplies in ``loaded``
(a shadow run takes them from the recorded run) is merged as the real run
merges it, and any other is recorded as a would-be fetch and reported skipped.
Everything reported goes through the renderer's redaction: no secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.condition import RuleLookup
from engine.context import approval_context, build_context, deep_merge, merge_event, with_now
from engine.definition import Definition, Step
from engine.enrichment import LOADED, SKIPPED, context_updates
from engine.errors import StepError
from engine.executor import run_step
from engine.fanout import (
    foreach_body,
    item_outcome,
    join_foreach,
    join_parallel,
    plan_foreach,
    plan_parallel,
)
from engine.machine import (
    AwaitApproval,
    Continue,
    Decision,
    Finish,
    Wait,
    decide_after_approval,
    decide_after_failure,
    decide_after_join,
    decide_after_success,
    decide_after_wait,
    idempotency_key,
    retry_due,
)
from engine.outcome import BranchOutcome, StepOutcome
from engine.port import HttpRequest, HttpResponse, Notification
from engine.state import ApprovalStatus, ErrorType, ExecutionResult, ExecutionStatus, StepRunStatus
from engine.templating import TemplateRenderer

DRY_RUN_ID = "dry-run"
APPROVAL_URL_PLACEHOLDER = "<approval link>"


class RecordingPorts:
    """``StepPorts`` that record every effect instead of doing it."""

    def __init__(self, respond: Callable[[HttpRequest], HttpResponse] | None = None) -> None:
        self.effects: list[dict[str, Any]] = []
        self._respond = respond

    def http_request(self, request: HttpRequest) -> HttpResponse:
        self.effects.append({"kind": "http_request", "would": "call", **request.to_dict()})
        if self._respond is not None:
            return self._respond(request)
        return HttpResponse(200, {}, {})

    def notify(self, notification: Notification) -> dict[str, Any]:
        self.effects.append({"kind": "notify", "would": "send", **notification.to_dict()})
        return {"status": "would_send", "recipients": list(notification.recipients)}

    def create_record(
        self, entity: str, entity_id: str | None, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self._record("create_record", entity, entity_id, data)

    def update_record(self, entity: str, entity_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._record("update_record", entity, entity_id, data)

    def delete_record(self, entity: str, entity_id: str) -> dict[str, Any]:
        return self._record("delete_record", entity, entity_id, None)

    def log(self, message: str) -> None:
        self.effects.append({"kind": "log", "would": "write", "message": message})

    def _record(
        self, kind: str, entity: str, entity_id: str | None, data: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        effect = {
            "entity": entity,
            "entity_id": entity_id,
            "data": None if data is None else dict(data),
        }
        verb = kind.partition("_")[0]
        self.effects.append({"kind": kind, "would": verb, **effect})
        return {"status": f"would_{verb}", **effect}


@dataclass(frozen=True)
class StepTrace:
    """One attempt of one step, as the trace of a real run would show it."""

    step_id: str
    step_type: str
    attempt: int
    status: StepRunStatus
    input: Any = None
    output: Any = None
    error: Mapping[str, Any] | None = None
    parent_step_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "step_type": self.step_type,
            "attempt": self.attempt,
            "status": self.status.value,
            "input": self.input,
            "output": self.output,
            "error": None if self.error is None else dict(self.error),
            "parent_step_id": self.parent_step_id,
        }


@dataclass(frozen=True)
class DryRunReport:
    path: tuple[str, ...]
    status: ExecutionStatus
    result: ExecutionResult | None
    decisions: tuple[dict[str, Any], ...] = ()
    effects: tuple[dict[str, Any], ...] = ()
    steps: tuple[StepTrace, ...] = ()
    error_type: ErrorType | None = None
    message: str | None = None
    waiting: Mapping[str, Any] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": list(self.path),
            "status": self.status.value,
            "result": None if self.result is None else self.result.value,
            "error_type": None if self.error_type is None else self.error_type.value,
            "message": self.message,
            "decisions": list(self.decisions),
            "effects": list(self.effects),
            "steps": [step.to_dict() for step in self.steps],
            "waiting": None if self.waiting is None else dict(self.waiting),
            "context": dict(self.context),
        }


def dry_run(
    definition: Definition,
    payload: Mapping[str, Any],
    *,
    now: datetime,
    renderer: TemplateRenderer,
    rules: RuleLookup | None = None,
    max_steps: int = 1000,
    approvals: Mapping[str, ApprovalStatus] | None = None,
    events: Mapping[str, Mapping[str, Any] | None] | None = None,
    ports: RecordingPorts | None = None,
    event_type: str | None = None,
    loaded: Mapping[str, Any] | None = None,
) -> DryRunReport:
    """Follow ``definition`` from its first step on ``payload``; see the module doc."""
    ports = ports or RecordingPorts()
    context = build_context(
        payload,
        execution_id=DRY_RUN_ID,
        started_at=now,
        workflow_id="",
        workflow_version="",
        event_type=event_type,
        event_id=DRY_RUN_ID if event_type is not None else None,
    )
    if definition.context_load:
        context = deep_merge(context, _load(definition.context_load, loaded or {}, ports))
    run = _DryRun(definition, context, now=now, renderer=renderer, rules=rules, ports=ports)
    return run.follow(max_steps, dict(approvals or {}), dict(events or {}))


def _load(
    resources: tuple[str, ...], loaded: Mapping[str, Any], ports: RecordingPorts
) -> dict[str, Any]:
    """`context.load`'s context updates, from what the caller supplied (engine.enrichment)."""
    values: dict[str, Any] = {}
    report: dict[str, dict[str, Any]] = {}
    for resource in resources:
        if resource in loaded:
            values[resource] = loaded[resource]
            report[resource] = {"status": LOADED}
        else:
            ports.effects.append({"kind": "load", "would": "fetch", "resource": resource})
            report[resource] = {"status": SKIPPED, "error": "a dry run fetches nothing"}
    return context_updates(values, report)


class _DryRun:
    def __init__(
        self,
        definition: Definition,
        context: dict[str, Any],
        *,
        now: datetime,
        renderer: TemplateRenderer,
        rules: RuleLookup | None,
        ports: RecordingPorts,
    ) -> None:
        self.definition = definition
        self.context = context
        self.now = now
        self.renderer = renderer
        self.rules = rules
        self.ports = ports
        self.path: list[str] = []
        self.decisions: list[dict[str, Any]] = []
        self.steps: list[StepTrace] = []

    def follow(
        self,
        max_steps: int,
        approvals: Mapping[str, ApprovalStatus],
        events: Mapping[str, Mapping[str, Any] | None],
    ) -> DryRunReport:
        step: Step = self.definition.first_step
        result: ExecutionResult | None = None
        for _ in range(max_steps):
            self.path.append(step.id)
            self.context = with_now(self.context, self.now)
            decision = self.run_one(step, result)
            if isinstance(decision, Wait | AwaitApproval):
                self.context = deep_merge(self.context, decision.context_updates)
                settled = self.settle(step, decision, approvals, events)
                if isinstance(settled, DryRunReport):
                    return settled
                decision = settled
            if isinstance(decision, Finish):
                self.context = deep_merge(self.context, decision.context_updates)
                return self.report(
                    decision.status, decision.result, decision.error_type, decision.message
                )
            if isinstance(decision, Continue):
                self.context = deep_merge(self.context, decision.context_updates)
                result = decision.result
                step = self.definition.step(decision.step_id)
        message = f"dry run stopped after {max_steps} steps (a loop?)"
        return self.report(
            ExecutionStatus.FAILED, ExecutionResult.FAILED, ErrorType.STEP_ERROR, message
        )

    def settle(
        self,
        step: Step,
        decision: Wait | AwaitApproval,
        approvals: Mapping[str, ApprovalStatus],
        events: Mapping[str, Mapping[str, Any] | None],
    ) -> Decision | DryRunReport:
        """What the supplied approval or event decides, or the report of a run that
        stops to wait."""
        request = decision.request.to_dict()
        if isinstance(decision, AwaitApproval):
            self.ports.effects.append({"kind": "approval", "would": "request", **request})
            if step.id not in approvals:
                return self.stop_waiting(step, "approval", request, decision.result)
            status = ApprovalStatus(approvals[step.id])
            update = approval_context(
                step.id, status=status.value, approver=DRY_RUN_ID, reason=None, decided_at=self.now
            )
            self.context = deep_merge(self.context, update)
            self.decisions.append({"step_id": step.id, "approval": status.value})
            return decide_after_approval(self.definition, step, status, decision.result)
        kind = "event" if decision.request.is_for_event else "time"
        if step.id not in events:
            return self.stop_waiting(step, kind, request, decision.result)
        arrived = events[step.id]
        if arrived is not None and decision.request.event is not None:
            self.context = merge_event(
                self.context, decision.request.event, arrived, step_id=step.id
            )
        self.decisions.append(
            {"step_id": step.id, "wait": "timed out" if arrived is None else "ended"}
        )
        return decide_after_wait(self.definition, step, arrived is None, decision.result)

    def run_one(self, step: Step, result: ExecutionResult | None) -> Decision:
        if step.creates_approval:
            # The real shell links to the approval it pre-allocates.
            self.context = {**self.context, "approval_url": APPROVAL_URL_PLACEHOLDER}
        if step.parallel is not None:
            branches = {b.id: self.branch(b, self.context, step.id) for b in plan_parallel(step)}
            join = join_parallel(step, branches)
            self.decisions.append({"step_id": step.id, "join": join.to_dict()})
            return decide_after_join(self.definition, step, join, result)
        if step.foreach is not None:
            return self.run_foreach(step, result)
        ran, attempts = self.attempt(step, self.context, None)
        if isinstance(ran, StepError):
            return decide_after_failure(
                self.definition, step, ran, attempts, self.now, _no_jitter, current_result=result
            )
        self.decisions.append(_step_decision(step, ran))
        return decide_after_success(self.definition, step, ran, result)

    def run_foreach(self, step: Step, result: ExecutionResult | None) -> Decision:
        try:
            overlays = plan_foreach(step, self.context, self.renderer)
        except StepError as error:
            self.record(step, 1, None, error, None)
            return decide_after_failure(
                self.definition, step, error, 1, self.now, _no_jitter, current_result=result
            )
        items = []
        for overlay in overlays:
            item_context = deep_merge(self.context, overlay)
            body: list[tuple[str, StepOutcome | StepError]] = []
            for body_step in foreach_body(step):
                ran, _ = self.attempt(body_step, item_context, step.id)
                body.append((body_step.id, ran))
                if isinstance(ran, StepError) or ran.condition_result is False:
                    break
                item_context = deep_merge(item_context, ran.context_updates)
            items.append(item_outcome(body))
        join = join_foreach(step, items)
        self.decisions.append({"step_id": step.id, "join": join.to_dict()})
        return decide_after_join(self.definition, step, join, result)

    def branch(self, step: Step, context: Mapping[str, Any], parent: str) -> BranchOutcome:
        ran, _ = self.attempt(step, context, parent)
        if isinstance(ran, StepError):
            return BranchOutcome.from_error(ran)
        self.decisions.append(_step_decision(step, ran))
        return BranchOutcome.from_outcome(ran)

    def attempt(
        self, step: Step, context: Mapping[str, Any], parent: str | None
    ) -> tuple[StepOutcome | StepError, int]:
        """Run a step with its retries, at once; the outcome or the last error."""
        attempt = 1
        while True:
            try:
                outcome = run_step(
                    step,
                    context,
                    self.ports,
                    self.renderer,
                    rules=self.rules,
                    idempotency_key=idempotency_key(DRY_RUN_ID, step.id, 1),
                )
            except StepError as error:
                self.record(step, attempt, None, error, parent)
                due = retry_due(step, error, attempt, self.now, _no_jitter)
                if due is None:
                    return error, attempt
                self.decisions.append(
                    {
                        "step_id": step.id,
                        "retry": {
                            "attempt": attempt + 1,
                            "after_seconds": (due - self.now).total_seconds(),
                        },
                    }
                )
                attempt += 1
            else:
                self.record(step, attempt, outcome, None, parent)
                return outcome, attempt

    def record(
        self,
        step: Step,
        attempt: int,
        outcome: StepOutcome | None,
        error: StepError | None,
        parent: str | None,
    ) -> None:
        self.steps.append(
            StepTrace(
                step_id=step.id,
                step_type=step.type,
                attempt=attempt,
                status=StepRunStatus.FAILED if error is not None else StepRunStatus.COMPLETED,
                input=None if outcome is None else outcome.input,
                output=None if outcome is None else self.renderer.redact(outcome.output),
                error=None if error is None else self.renderer.redact(error.to_dict()),
                parent_step_id=parent,
            )
        )

    def stop_waiting(
        self, step: Step, kind: str, request: Mapping[str, Any], result: ExecutionResult | None
    ) -> DryRunReport:
        waiting = {"kind": kind, "step_id": step.id, "would_wait_for": dict(request)}
        return self.report(ExecutionStatus.WAITING, result, None, f"would wait for {kind}", waiting)

    def report(
        self,
        status: ExecutionStatus,
        result: ExecutionResult | None,
        error_type: ErrorType | None,
        message: str | None,
        waiting: Mapping[str, Any] | None = None,
    ) -> DryRunReport:
        redact = self.renderer.redact
        return DryRunReport(
            path=tuple(self.path),
            status=status,
            result=result,
            decisions=tuple(redact(self.decisions)),
            effects=tuple(redact(self.ports.effects)),
            steps=tuple(self.steps),
            error_type=error_type,
            message=message,
            waiting=None if waiting is None else redact(dict(waiting)),
            context=redact(self.context),
        )


def _no_jitter() -> float:
    return 0.0


def _step_decision(step: Step, outcome: StepOutcome) -> dict[str, Any]:
    decision: dict[str, Any] = {
        "step_id": step.id,
        "type": step.type,
        "next_step_id": outcome.next_step_id,
        "result": None if outcome.result is None else outcome.result.value,
    }
    if outcome.condition_result is not None:
        decision["condition"] = outcome.condition_result
        decision["leaves"] = outcome.decisions
    if outcome.reason is not None:
        decision["reason"] = outcome.reason
    return decision
