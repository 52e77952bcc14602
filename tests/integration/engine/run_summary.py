"""What a dry run and a real run are compared on: the same summary read from either answer.

A dry run (`POST /workflows/{id}/test`) answers its path, decisions and one trace
row per step attempt; a real run is read back from `GET /executions/{id}` and its
`/trace`. Both are reduced to a `RunSummary` with one reader per side, and every
decision is read from the step's output the same way on both sides (a condition's
`output.result`, an action's `output.action`), so two equal summaries mean the
runs took the same path, decided the same at every step and ended the same way.

The endpoint takes no decisions, so a run that reaches an approval or a wait is
compared up to it (both must wait at the same step with the same provisional
result). To go past approvals, `decide_every_approval` answers them through the
approvals API and `dry_run_deciding` tells the engine's dry run (the function the
endpoint calls) the same answer; waits for events stay unanswered on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.integration.engine.conftest import API, drive, execution, send_event, trace
from tests.support import Caller

# Steps whose own row the dry run does not write (it records their branches or
# items and the join); they are compared through the path and the branch rows.
FAN_OUT_TYPES = frozenset({"parallel", "foreach"})


@dataclass(frozen=True)
class RunSummary:
    path: tuple[str, ...]
    # (step_id, attempt, status, decision) for each attempt of a top-level step, in order.
    steps: tuple[tuple[Any, ...], ...]
    # The same for parallel branches, sorted: branches run concurrently. (Foreach items
    # are compared through their join.)
    branches: tuple[tuple[Any, ...], ...]
    # (step_id, passed, failed branches or items, each foreach item's decisions, each
    # failed item's error) for each parallel or foreach join.
    joins: tuple[tuple[Any, ...], ...]
    status: str
    result: str | None
    error_type: str | None
    waiting_at: str | None


def decision(step_type: str, status: str, output: Any, error_code: str | None) -> Any:
    """What a step decided, read from its trace row."""
    if status == "failed":
        return ("failed", error_code)
    if not isinstance(output, dict):
        return None
    if step_type == "condition":
        return ("condition", output.get("result"))
    if step_type == "action":
        return ("action", output.get("action"))
    return None


def output_decision(output: Any) -> Any:
    """What a step inside a foreach item decided, read from its output alone (a join
    keeps outputs without step types)."""
    if isinstance(output, dict) and "action" in output:
        return ("action", output["action"])
    if isinstance(output, dict) and set(output) == {"result"}:
        return ("condition", output["result"])
    return None


def join_summary(step_id: str, passed: bool, join: Any) -> tuple[Any, ...]:
    """A join, as the dry run's decision and the real fan-out row both keep it."""
    join = join if isinstance(join, dict) else {}
    inner = join.get("output") if isinstance(join.get("output"), dict) else {}
    items, errors = None, None
    if isinstance(inner.get("items"), list):
        items = tuple(
            tuple(sorted((body_id, output_decision(out)) for body_id, out in item.items()))
            if isinstance(item, dict)
            else item
            for item in inner["items"]
        )
        errors = tuple(
            sorted((index, (error or {}).get("code")) for index, error in inner["errors"].items())
        )
    return (step_id, passed, tuple(sorted(join.get("failed") or [])), items, errors)


def _is_foreach_join(join: Any) -> bool:
    return (
        isinstance(join, dict)
        and isinstance(join.get("output"), dict)
        and "items" in join["output"]
    )


def _is_planning_failure(output: Any) -> bool:
    """A fan-out step that failed before any branch ran (foreach items not a list): the
    dry run writes it as a failed step of its own, not as a join."""
    return isinstance(output, dict) and "error" in output and "failed" not in output


def branch_output(output: Any) -> Any:
    """A branch row keeps the branch's whole outcome; its step's output is inside."""
    if isinstance(output, dict) and "passed" in output:
        return output.get("output")
    return output


def summarise_dry_run(report: dict[str, Any]) -> RunSummary:
    joins = [d for d in report["decisions"] if "join" in d]
    # A foreach item is one row in the real trace (all its body steps) but one row per
    # body step here: items are compared through the join instead.
    foreach_ids = {d["step_id"] for d in joins if _is_foreach_join(d["join"])}
    top, branches = [], []
    for row in report["steps"]:
        if row["parent_step_id"] in foreach_ids:
            continue
        error_code = (row["error"] or {}).get("code")
        entry = (
            row["step_id"],
            row["attempt"],
            row["status"],
            decision(row["step_type"], row["status"], row["output"], error_code),
        )
        (branches if row["parent_step_id"] else top).append(entry)
    waiting = report["waiting"]
    return RunSummary(
        path=tuple(report["path"]),
        steps=tuple(top),
        branches=tuple(sorted(branches, key=repr)),
        status=report["status"],
        result=report["result"],
        error_type=report["error_type"],
        joins=tuple(join_summary(d["step_id"], d["join"]["passed"], d["join"]) for d in joins),
        waiting_at=waiting["step_id"] if waiting else None,
    )


def summarise_real_run(body: dict[str, Any], trace_body: dict[str, Any]) -> RunSummary:
    path, top, branches, joins = [], [], [], []
    for row in trace_body["steps"]:
        output = branch_output(row["output"]) if row["branch_key"] else row["output"]
        entry = (
            row["step_id"],
            row["attempt"],
            row["status"],
            decision(row["step_type"], row["status"], output, row["error_code"]),
        )
        if row["branch_key"]:
            if row["step_type"] != "foreach":
                branches.append(entry)
            continue
        if row["attempt"] == 1:
            path.append(row["step_id"])
        if row["step_type"] not in FAN_OUT_TYPES or _is_planning_failure(row["output"]):
            top.append(entry)
        elif row["status"] in ("completed", "failed"):
            joins.append(join_summary(row["step_id"], row["status"] == "completed", row["output"]))
    return RunSummary(
        path=tuple(path),
        steps=tuple(top),
        branches=tuple(sorted(branches, key=repr)),
        status=body["status"],
        result=body["result"],
        error_type=body["error_type"],
        joins=tuple(joins),
        waiting_at=body["current_step_id"] if body["status"] == "waiting" else None,
    )


def dry_run(caller: Caller, workflow: dict[str, Any], payload: dict[str, Any]) -> RunSummary:
    response = caller.post(f"{API}/workflows/{workflow['id']}/test", {"payload": payload})
    assert response.status_code == 200, response.json
    return summarise_dry_run(dict(response.json))


def dry_run_answering(
    workflow: dict[str, Any],
    payload: dict[str, Any],
    decision: str,
    secrets: dict[str, str],
    events: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The engine's dry run (the function the endpoint calls) told what the endpoint
    cannot be told: every approval is decided `decision` (`approved` or `rejected`)
    and the wait steps in `events` get that payload."""
    from engine.definition import Definition
    from engine.dryrun import dry_run as engine_dry_run
    from engine.state import ApprovalStatus
    from engine.templating import TemplateRenderer

    definition = Definition.from_dict(workflow["definition"])
    trigger = definition.trigger
    exact_event = trigger.type == "event" and trigger.event and "*" not in trigger.event
    steps, step_ids = list(definition.steps), []
    while steps:
        step = steps.pop()
        step_ids.append(step.id)
        steps.extend(step.body)
    report = engine_dry_run(
        definition,
        payload,
        now=datetime.now(UTC),
        renderer=TemplateRenderer(secrets),
        approvals={step_id: ApprovalStatus(decision) for step_id in step_ids},
        events=events,
        event_type=trigger.event if exact_event else None,
    )
    return report.to_dict()


def start(caller: Caller, workflow: dict[str, Any], payload: dict[str, Any]) -> str:
    def execute() -> str:
        started = caller.post(f"{API}/workflows/{workflow['id']}/execute", {"payload": payload})
        assert started.status_code == 202, started.json
        return str(started.json["id"])

    return start_as_triggered(
        workflow, payload, lambda event: send_event(caller, event, payload), execute
    )


def start_as_triggered(
    workflow: dict[str, Any],
    payload: dict[str, Any],
    send: Callable[[str], dict[str, Any]],
    execute: Callable[[], str],
) -> str:
    """Start `workflow` as its trigger would: its event (`send`), else manually
    (`execute`). The dry run runs the steps whatever the trigger's filter says; an event
    its filter refuses starts nothing (checked against the engine's routing), so that
    payload runs manually."""
    trigger = workflow["definition"]["trigger"]
    event = trigger.get("event") if trigger["type"] == "event" else None
    if event and "*" not in event:
        started_ids = send(event)["execution_ids"]
        if started_ids:
            (execution_id,) = started_ids
            return str(execution_id)
        assert not trigger_starts(workflow, event, payload), "the event should have started it"
    return execute()


def run_until_settled(rt: Any) -> None:
    """Every due step through the real step task code, until the run finishes or waits;
    backoffs are made due at once, as the dry run retries without waiting."""
    drive(rt, include_delayed=True)


def read_real_run(caller: Caller, execution_id: str) -> RunSummary:
    return summarise_real_run(execution(caller, execution_id), trace(caller, execution_id))


def real_run(
    rt: Any, caller: Caller, workflow: dict[str, Any], payload: dict[str, Any]
) -> RunSummary:
    execution_id = start(caller, workflow, payload)
    run_until_settled(rt)
    return read_real_run(caller, execution_id)


@dataclass
class Answered:
    approvals: int = 0
    # The wait steps whose event the real run took.
    events: list[str] = field(default_factory=list)


def answer_waits(
    rt: Any,
    caller: Caller,
    execution_id: str,
    verb: str,
    events: dict[str, tuple[str, dict[str, Any]]],
) -> Answered:
    """Answer what the real run waits for, running the steps after each answer: every
    approval with `verb` (`approve` or `reject`) through the approvals API, and a wait
    step in `events` with its (event type, payload) through `POST /events`. Stops at a
    wait it has no answer for (or whose event it did not take: a `match` not met)."""
    answered = Answered()
    while (body := execution(caller, execution_id))["status"] == "waiting":
        step_id = body["current_step_id"]
        listed = caller.get(f"{API}/approvals?execution_id={execution_id}&status=pending")
        assert listed.status_code == 200, listed.json
        if listed.json["approvals"]:
            (approval,) = listed.json["approvals"]
            url = f"{API}/approvals/{approval['id']}/{verb}"
            decided = caller.post(url, {"reason": "differential"})
            assert decided.status_code == 200, decided.json
            answered.approvals += 1
        elif step_id in events and step_id not in answered.events:
            event_type, payload = events[step_id]
            send_event(caller, event_type, payload)
            answered.events.append(step_id)
        else:
            return answered
        run_until_settled(rt)
        after = execution(caller, execution_id)
        if after["status"] == "waiting" and after["current_step_id"] == step_id:
            if answered.events[-1:] == [step_id]:
                answered.events.pop()
            return answered
    return answered


def trigger_starts(workflow: dict[str, Any], event: str, payload: dict[str, Any]) -> bool:
    from engine.condition import evaluate
    from engine.definition import Definition
    from engine.templating import TemplateRenderer
    from engine.trigger import event_matches

    trigger = Definition.from_dict(workflow["definition"]).trigger
    renderer = TemplateRenderer()

    def holds(condition: Any, data: Any) -> bool:
        return evaluate(condition, data, render=lambda value: renderer.render(value, data))

    return event_matches(trigger, event, payload, holds)
