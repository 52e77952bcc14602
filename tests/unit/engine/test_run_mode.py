"""engine.definition.Definition.run_mode: the one place that says how a step runs."""

from __future__ import annotations

from engine.definition import Definition, RunMode


def definition(*steps: dict, load: tuple[str, ...] = ()) -> Definition:
    body = {"trigger": {"type": "manual"}, "steps": list(steps)}
    if load:
        body["context"] = {"load": list(load)}
    return Definition.from_dict(body)


SET = {"id": "set", "type": "execute", "execute": [{"type": "set", "values": {"a": 1}}]}
LOG = {"id": "log", "type": "execute", "execute": [{"type": "log", "message": "m"}]}
CALL = {"id": "call", "type": "execute", "execute": [{"type": "webhook", "url": "https://x.io"}]}
ASK = {"id": "ask", "type": "action", "action": {"type": "require_approval"}}
EACH = {
    "id": "each",
    "type": "foreach",
    "foreach": {"items": "{{ items }}", "steps": [CALL]},
}


def test_a_step_that_only_sets_the_context_is_plain() -> None:
    flow = definition(SET)
    assert flow.run_mode(flow.step("set")) is RunMode.PLAIN


def test_steps_that_write_only_to_postgres_are_atomic() -> None:
    flow = definition(SET, LOG, ASK)
    assert flow.run_mode(flow.step("log")) is RunMode.ATOMIC
    assert flow.run_mode(flow.step("ask")) is RunMode.ATOMIC


def test_a_step_that_calls_out_runs_with_effects() -> None:
    flow = definition(SET, CALL)
    assert flow.run_mode(flow.step("call")) is RunMode.EFFECTS


def test_a_foreach_item_runs_as_its_body_needs() -> None:
    flow = definition(EACH)
    assert flow.run_mode(flow.step("each")) is RunMode.ATOMIC  # starting: plans and fans out
    assert flow.run_mode(flow.step("each"), "each/0") is RunMode.EFFECTS


def test_the_first_step_loads_the_context_with_effects() -> None:
    flow = definition(SET, LOG, load=("order.details",))
    assert flow.run_mode(flow.step("set")) is RunMode.EFFECTS
    assert flow.run_mode(flow.step("log")) is RunMode.ATOMIC
