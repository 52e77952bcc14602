"""Parallel and foreach steps: plan the branches, then join their outcomes.

The shell runs each branch (or each foreach item's body) as its own task with
``run_step``, turns what happened into a ``BranchOutcome``, and once every
branch has ended calls the join exactly once. Join strategies:

* ``all_must_pass`` (default): every branch passed;
* ``any_can_pass``: at least one branch passed (or there were none);
* ``best_effort``: always passes; failures are reported in the output.

Branch steps do not route: their ``next``/``on_*`` edges are refused by
validation. A foreach item's body runs its steps in order; the item fails at
the first failing step (or false condition) and its output maps each body
step id to that step's output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.context import deep_merge
from engine.definition import Step
from engine.errors import EngineError, StepError, TemplateError
from engine.outcome import BranchOutcome, JoinDecision, StepOutcome
from engine.templating import TemplateRenderer


def plan_parallel(step: Step) -> list[Step]:
    """The branches to run, one task each."""
    if step.parallel is None:
        raise EngineError(f"step {step.id!r} is not a parallel step")
    return list(step.parallel.steps)


def join_parallel(step: Step, outcomes: Mapping[str, BranchOutcome]) -> JoinDecision:
    """The verdict once every branch (keyed by branch step id) has ended."""
    branches = plan_parallel(step)
    missing = [branch.id for branch in branches if branch.id not in outcomes]
    if missing:
        raise EngineError(f"parallel step {step.id!r} joined before branches {missing} ended")
    ordered = [(branch.id, outcomes[branch.id]) for branch in branches]
    output = {"branches": {branch_id: outcome.to_dict() for branch_id, outcome in ordered}}
    updates: dict[str, Any] = {}
    for branch_id, outcome in ordered:
        updates = deep_merge(updates, outcome.context_updates)
        updates = deep_merge(updates, {"steps": {branch_id: {"output": outcome.output}}})
    updates = deep_merge(updates, {"steps": {step.id: {"output": output}}})
    strategy = step.parallel.strategy if step.parallel is not None else "all_must_pass"
    return _join(step, strategy, ordered, output, updates)


def plan_foreach(
    step: Step, context: Mapping[str, Any], renderer: TemplateRenderer
) -> list[dict[str, Any]]:
    """Each item's context overlay (``{item_var: item, index_var: i}``), in order.

    A missing list means no items. More items than the step's ``limit`` fails
    the step rather than silently dropping some.
    """
    spec = step.foreach
    if spec is None:
        raise EngineError(f"step {step.id!r} is not a foreach step")
    try:
        items = renderer.render(spec.items, context)
    except TemplateError as exc:
        raise StepError("template", str(exc), details={"step_id": step.id}) from exc
    if items is None or items == "":
        items = []
    if not isinstance(items, list):
        raise StepError(
            "type",
            f"foreach.items of step {step.id!r} rendered to {type(items).__name__}, not a list",
        )
    if len(items) > spec.limit:
        raise StepError(
            "validation",
            f"foreach step {step.id!r} has {len(items)} items, more than its limit of {spec.limit}",
        )
    return [{spec.item_var: item, spec.index_var: index} for index, item in enumerate(items)]


def foreach_body(step: Step) -> list[Step]:
    """The steps each item runs, in order."""
    if step.foreach is None:
        raise EngineError(f"step {step.id!r} is not a foreach step")
    return list(step.foreach.steps)


def item_outcome(ran: Sequence[tuple[str, StepOutcome | StepError]]) -> BranchOutcome:
    """One foreach item's outcome from its body steps, in the order they ran."""
    output: dict[str, Any] = {}
    updates: dict[str, Any] = {}
    for step_id, result in ran:
        if isinstance(result, StepError):
            return BranchOutcome(False, output, result.to_dict(), updates)
        output[step_id] = result.output
        updates = deep_merge(updates, result.context_updates)
        if result.condition_result is False:
            return BranchOutcome(False, output, None, updates)
    return BranchOutcome(True, output, None, updates)


def join_foreach(step: Step, outcomes: Sequence[BranchOutcome]) -> JoinDecision:
    """The verdict once every item has ended; outputs are collected in item order."""
    if step.foreach is None:
        raise EngineError(f"step {step.id!r} is not a foreach step")
    ordered = [(str(index), outcome) for index, outcome in enumerate(outcomes)]
    output = {
        "items": [outcome.output for outcome in outcomes],
        "errors": {key: outcome.error for key, outcome in ordered if outcome.error is not None},
    }
    updates = {"steps": {step.id: {"output": output}}}
    return _join(step, step.foreach.strategy, ordered, output, updates)


def _join(
    step: Step,
    strategy: str,
    ordered: Sequence[tuple[str, BranchOutcome]],
    output: Any,
    updates: Mapping[str, Any],
) -> JoinDecision:
    failed = tuple(key for key, outcome in ordered if not outcome.passed)
    if strategy == "best_effort":
        passed = True
    elif strategy == "any_can_pass":
        # An empty foreach has nothing that could fail.
        passed = not ordered or len(failed) < len(ordered)
    else:
        passed = not failed
    message = None
    if not passed:
        which = ", ".join(failed) or "no branches"
        message = f"{step.type} step {step.id!r} failed ({strategy}): {which}"
    return JoinDecision(passed, output, failed, message, updates)
