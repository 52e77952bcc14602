import pytest

from engine.definition import Step
from engine.errors import EngineError, StepError
from engine.executor import (
    BranchOutcome,
    StepOutcome,
    foreach_body,
    item_outcome,
    join_foreach,
    join_parallel,
    plan_foreach,
    plan_parallel,
    run_step,
)
from engine.templating import TemplateRenderer
from tests.unit.engine.fakes import FakePorts

RENDERER = TemplateRenderer()


def parallel(strategy="all_must_pass"):
    return Step.from_dict(
        {
            "id": "p",
            "type": "parallel",
            "parallel": {
                "strategy": strategy,
                "steps": [
                    {
                        "id": "small",
                        "type": "condition",
                        "condition": {"field": "n", "operator": "lt", "value": 10},
                    },
                    {
                        "id": "call",
                        "type": "execute",
                        "execute": [{"type": "webhook", "url": "https://x.example.com"}],
                    },
                ],
            },
        }
    )


def branch_outcomes(context):
    outcomes = {}
    for branch in plan_parallel(parallel()):
        try:
            outcome = run_step(
                branch, context, FakePorts(), RENDERER, idempotency_key=f"e:{branch.id}:1"
            )
        except StepError as error:
            outcomes[branch.id] = BranchOutcome.from_error(error)
        else:
            outcomes[branch.id] = BranchOutcome.from_outcome(outcome)
    return outcomes


def test_parallel_plans_one_branch_per_body_step():
    assert [b.id for b in plan_parallel(parallel())] == ["small", "call"]


def test_all_must_pass_joins_when_every_branch_passes():
    join = join_parallel(parallel(), branch_outcomes({"n": 3}))
    assert join.passed
    assert join.output["branches"]["small"] == {
        "passed": True,
        "output": {"result": True},
        "error": None,
    }
    assert join.context_updates["steps"]["call"]["output"]["results"][0]["status_code"] == 200
    assert "p" in join.context_updates["steps"]


def test_a_false_condition_branch_fails_an_all_must_pass_join():
    join = join_parallel(parallel(), branch_outcomes({"n": 30}))
    assert not join.passed
    assert join.failed == ("small",)
    assert "small" in join.message


@pytest.mark.parametrize(
    ("strategy", "passes", "expected"),
    [
        ("all_must_pass", [True, False], False),
        ("any_can_pass", [True, False], True),
        ("any_can_pass", [False, False], False),
        ("best_effort", [False, False], True),
    ],
)
def test_join_strategies(strategy, passes, expected):
    outcomes = {
        "small": BranchOutcome(passes[0]),
        "call": BranchOutcome(passes[1], error={"code": "http_5xx"}),
    }
    assert join_parallel(parallel(strategy), outcomes).passed is expected


def test_a_join_waits_for_every_branch():
    with pytest.raises(EngineError, match="before branches"):
        join_parallel(parallel(), {"small": BranchOutcome(True)})


def test_join_order_follows_the_definition_not_the_delivery_order():
    outcomes = {"call": BranchOutcome(True, 2), "small": BranchOutcome(True, 1)}
    assert list(join_parallel(parallel(), outcomes).output["branches"]) == ["small", "call"]


def foreach(items="{{ order.lines }}", limit=1000, strategy="all_must_pass"):
    return Step.from_dict(
        {
            "id": "f",
            "type": "foreach",
            "foreach": {
                "items": items,
                "item_var": "line",
                "limit": limit,
                "strategy": strategy,
                "steps": [
                    {
                        "id": "big",
                        "type": "condition",
                        "condition": {"field": "line.qty", "operator": "gt", "value": 1},
                    },
                    {
                        "id": "say",
                        "type": "execute",
                        "execute": [{"type": "log", "message": "{{ index }}:{{ line.sku }}"}],
                    },
                ],
            },
        }
    )


def test_foreach_plans_one_overlay_per_item_with_its_index():
    context = {"order": {"lines": [{"sku": "a"}, {"sku": "b"}]}}
    assert plan_foreach(foreach(), context, RENDERER) == [
        {"line": {"sku": "a"}, "index": 0},
        {"line": {"sku": "b"}, "index": 1},
    ]


def test_foreach_over_a_missing_list_has_no_items_and_passes():
    assert plan_foreach(foreach(), {}, RENDERER) == []
    assert join_foreach(foreach(), []).passed


def test_foreach_items_must_be_a_list_within_the_limit():
    with pytest.raises(StepError) as caught:
        plan_foreach(foreach(), {"order": {"lines": {"a": 1}}}, RENDERER)
    assert caught.value.code == "type"
    with pytest.raises(StepError, match="more than its limit of 2"):
        plan_foreach(foreach(limit=2), {"order": {"lines": [1, 2, 3]}}, RENDERER)


def run_item(step, context):
    ports = FakePorts()
    ran: list[tuple[str, StepOutcome | StepError]] = []
    for body in foreach_body(step):
        outcome = run_step(body, context, ports, RENDERER, idempotency_key="k")
        ran.append((body.id, outcome))
        if outcome.condition_result is False:
            break
    return item_outcome(ran), ports


def test_each_item_runs_its_body_in_order_and_outputs_are_collected_in_order():
    step = foreach(strategy="best_effort")
    lines = [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]
    overlays = plan_foreach(step, {"order": {"lines": lines}}, RENDERER)
    results = [run_item(step, overlay) for overlay in overlays]
    assert results[0][1].logs == ["0:a"]
    assert results[1][1].logs == []
    join = join_foreach(step, [outcome for outcome, _ in results])
    assert join.passed
    assert join.failed == ("1",)
    assert join.output["items"][0] == {
        "big": {"result": True},
        "say": {"results": [{"message": "0:a"}]},
    }


def test_an_item_fails_at_its_first_error():
    error = StepError("http_5xx", "boom", status_code=500)
    outcome = item_outcome([("big", StepOutcome(output=1, condition_result=True)), ("say", error)])
    assert not outcome.passed
    assert outcome.output == {"big": 1}
    assert outcome.error["code"] == "http_5xx"
    assert not join_foreach(foreach(), [outcome]).passed
