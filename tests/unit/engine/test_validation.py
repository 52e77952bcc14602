import copy

import pytest

from engine.definition import Definition
from engine.errors import DefinitionError
from engine.validation import validate_definition, validate_workflow
from tests.unit.engine.fakes import EXAMPLES_DIR, load_example

EXAMPLES = sorted(path.stem for path in EXAMPLES_DIR.glob("*.json"))


def test_all_seven_examples_are_found():
    assert len(EXAMPLES) == 7


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_original_example_validates_as_is(name):
    canonical = validate_workflow(load_example(name))
    definition = Definition.from_dict(canonical["definition"])
    assert canonical["workflow_id"] == load_example(name)["workflow_id"]
    assert definition.steps


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_validates_in_the_wrapped_layout_too(name):
    raw = load_example(name)
    body = {k: raw.pop(k) for k in ("trigger", "context", "steps", "timeout") if k in raw}
    assert validate_workflow({**raw, "definition": body})["definition"]["steps"]


def base(*steps, trigger=None):
    return {
        "workflow_id": "wf",
        "version": "1",
        "name": "Test",
        "trigger": trigger or {"type": "manual"},
        "steps": list(steps) or [{"id": "end", "type": "action", "action": {"type": "allow"}}],
    }


def wrap(flat):
    flat = copy.deepcopy(flat)
    body = {k: flat.pop(k) for k in ("trigger", "context", "steps", "timeout") if k in flat}
    return {**flat, "definition": body}


def problems_of(raw):
    with pytest.raises(DefinitionError) as caught:
        validate_workflow(raw)
    return caught.value.as_dict()


def assert_problem(flat, path, fragment):
    """The problem is reported at ``path`` in the flat layout and at
    ``definition.<path>`` in the wrapped one."""
    for raw, where in ((flat, path), (wrap(flat), f"definition.{path}")):
        found = problems_of(raw)
        assert where in found, found
        assert any(fragment in message for message in found[where]), found[where]


def allow(step_id, **more):
    return {"id": step_id, "type": "action", "action": {"type": "allow"}, **more}


def check(step_id, **more):
    return {
        "id": step_id,
        "type": "condition",
        "condition": {"field": "x", "operator": "eq", "value": 1},
        **more,
    }


def test_top_level_fields_are_required_with_their_paths():
    found = problems_of({"trigger": {"type": "manual"}, "steps": [allow("a")], "version": True})
    assert set(found) >= {"workflow_id", "version", "name"}
    found = problems_of({**base(), "workflow_id": "bad id!", "tags": "x", "enabled": "yes"})
    assert set(found) == {"workflow_id", "tags", "enabled"}


def test_every_problem_is_reported_at_once():
    raw = base(allow("a", next="ghost"), {"id": "a", "type": "teleport"})
    raw["timeout"] = "forever"
    found = problems_of(raw)
    assert {"steps[0].next", "steps[1].id", "steps[1].type", "timeout"} <= set(found)


def test_unknown_step_type():
    assert_problem(base({"id": "a", "type": "teleport"}), "steps[0].type", "unknown step type")


def test_unknown_action_in_either_form():
    assert_problem(
        base({"id": "a", "type": "action", "action": {"type": "maybe"}}),
        "steps[0].action.type",
        "unknown action 'maybe'",
    )
    assert_problem(
        base({"id": "a", "type": "action", "action": {"action": "maybe"}}),
        "steps[0].action.action",
        "unknown action",
    )
    assert_problem(base({"id": "a", "type": "action"}), "steps[0].action", "is required")


def test_unknown_execute_item_type():
    step = allow(
        "a", execute=[{"type": "notify", "recipients": ["x"], "message": "m"}, {"type": "fax"}]
    )
    assert_problem(base(step), "steps[0].execute[1].type", "unknown execute item type 'fax'")


def test_execute_items_need_their_fields():
    step = {"id": "a", "type": "execute", "execute": [{"type": "notify"}, {"type": "webhook"}]}
    assert_problem(base(step), "steps[0].execute[0].recipients", "is required by notify")
    assert_problem(base(step), "steps[0].execute[0].message", "is required by notify")
    assert_problem(base(step), "steps[0].execute[1].url", "is required by webhook")


def test_a_step_creates_at_most_one_approval():
    item = {"type": "create_approval_request", "entity": "order", "data": {}}
    assert_problem(
        base(allow("a", execute=[item, item])), "steps[0].execute[1].type", "one approval"
    )


@pytest.mark.parametrize(
    "edge", ["next", "on_true", "on_false", "on_timeout", "on_error", "on_approve", "on_reject"]
)
def test_dangling_references(edge):
    assert_problem(base(check("a", **{edge: "ghost"})), f"steps[0].{edge}", "unknown step 'ghost'")


def test_duplicate_step_ids_including_inside_bodies():
    assert_problem(
        base(allow("a", next="a2"), allow("a2"), allow("a")), "steps[2].id", "duplicate step id 'a'"
    )
    parallel = {
        "id": "p",
        "type": "parallel",
        "parallel": {"steps": [check("b1"), check("p")]},
    }
    assert_problem(base(parallel), "steps[0].parallel.steps[1].id", "duplicate step id 'p'")


def test_unreachable_steps():
    assert_problem(base(allow("a"), allow("orphan")), "steps[1]", "unreachable")


def test_steps_inside_bodies_are_reachable_through_their_parent():
    parallel = {"id": "p", "type": "parallel", "parallel": {"steps": [check("b1")]}, "next": "end"}
    validate_workflow(base(parallel, allow("end")))


def test_bad_operator():
    step = {
        "id": "a",
        "type": "condition",
        "condition": {"field": "x", "operator": "approx", "value": 1},
    }
    assert_problem(base(step), "steps[0].condition.operator", "unknown operator 'approx'")


def test_bad_regex():
    step = {
        "id": "a",
        "type": "condition",
        "condition": {"field": "x", "operator": "regex", "value": "(a+)+"},
    }
    assert_problem(base(step), "steps[0].condition.value", "nests unbounded quantifiers")
    step["condition"]["value"] = "("
    assert_problem(base(step), "steps[0].condition.value", "does not compile")


@pytest.mark.parametrize(
    ("step", "path"),
    [
        (allow("a", timeout="soon"), "steps[0].timeout"),
        (
            allow("a", retry={"max_attempts": 3, "initial_interval": "1x"}),
            "steps[0].retry.initial_interval",
        ),
        (allow("a", retry={"max_interval": "-1s"}), "steps[0].retry.max_interval"),
        ({"id": "a", "type": "wait", "wait": {"duration": "a while"}}, "steps[0].wait.duration"),
        (
            {"id": "a", "type": "wait", "wait": {"event": "x", "timeout": "1y"}},
            "steps[0].wait.timeout",
        ),
        (
            allow(
                "a",
                execute=[{"type": "create_approval_request", "data": {"expires_in": "tomorrow"}}],
            ),
            "steps[0].execute[0].data.expires_in",
        ),
        (
            allow("a", execute=[{"type": "webhook", "url": "https://x", "timeout": "1 hour"}]),
            "steps[0].execute[0].timeout",
        ),
    ],
)
def test_bad_durations(step, path):
    assert_problem(base(step), path, "invalid duration")


def test_a_bad_workflow_timeout():
    assert_problem({**base(), "timeout": "1 week"}, "timeout", "invalid duration")


def test_retry_settings_are_checked():
    retry = {"max_attempts": 0, "backoff": "random", "jitter": 2, "retry_on": "5xx"}
    found = problems_of(base(allow("a", retry=retry)))
    assert set(found) == {
        "steps[0].retry.max_attempts",
        "steps[0].retry.backoff",
        "steps[0].retry.jitter",
        "steps[0].retry.retry_on",
    }


def test_bad_cron_and_timezone():
    schedule = {"type": "schedule", "cron": "61 * * * *", "timezone": "Nowhere/Land"}
    assert_problem(base(trigger=schedule), "trigger.cron", "invalid cron")
    assert_problem(base(trigger=schedule), "trigger.timezone", "unknown timezone")


@pytest.mark.parametrize("cron", ["0 */6 * * *", "0 0 */6 * * *", "@daily"])
def test_cron_in_five_six_or_descriptor_form(cron):
    validate_workflow(base(trigger={"type": "schedule", "cron": cron, "timezone": "Europe/Paris"}))


def test_triggers_need_their_fields():
    assert_problem(base(trigger={"type": "event"}), "trigger.event", "needs an event type")
    assert_problem(base(trigger={"type": "schedule"}), "trigger.cron", "needs a cron")
    assert_problem(base(trigger={"type": "webhook"}), "trigger.type", "unknown trigger type")
    event = {"type": "event", "event": "order.*", "filter": {"field": "a", "operator": "is"}}
    assert_problem(base(trigger=event), "trigger.filter.operator", "unknown operator")


def test_wait_until_must_be_an_iso_date_time_or_a_template():
    bad = {"id": "a", "type": "wait", "wait": {"until": "next tuesday"}}
    assert_problem(base(bad), "steps[0].wait.until", "ISO 8601")
    for until in ("2030-01-01T00:00:00Z", "{{ order.ship_by }}"):
        validate_workflow(base({"id": "a", "type": "wait", "wait": {"until": until}}))


def test_a_wait_waits_for_exactly_one_thing():
    both = {"id": "a", "type": "wait", "wait": {"event": "x", "duration": "5m"}}
    assert_problem(base(both), "steps[0].wait", "exactly one")


def test_templates_that_do_not_compile_are_reported_where_they_are():
    step = allow("a", execute=[{"type": "notify", "recipients": ["x"], "message": "Hi {{ name"}])
    assert_problem(base(step), "steps[0].execute[0].message", "does not compile")
    nested = {
        "id": "p",
        "type": "parallel",
        "parallel": {
            "steps": [
                {"id": "b", "type": "execute", "execute": [{"type": "log", "message": "{% for %}"}]}
            ]
        },
    }
    assert_problem(
        base(nested), "steps[0].parallel.steps[0].execute[0].message", "does not compile"
    )


def test_a_cycle_without_a_way_out_is_an_error():
    flat = base(allow("a", next="b"), allow("b", next="a"))
    assert_problem(flat, "steps[0]", "cycle with no way out")


def test_a_self_loop_without_a_way_out_is_an_error():
    assert_problem(base(allow("a", next="a")), "steps[0]", "a -> a")


def test_a_cycle_with_a_condition_exit_is_fine():
    loop = base(
        {"id": "poll", "type": "wait", "wait": {"duration": "5m"}, "next": "done?"},
        check("done?", on_true="finish", on_false="poll"),
        allow("finish"),
    )
    validate_workflow(loop)


def test_a_condition_missing_a_branch_can_end_and_so_exits_its_cycle():
    validate_workflow(base(allow("a", next="b"), check("b", on_true="a")))


def test_a_cycle_through_an_approval_can_end_by_rejection():
    item = {"type": "create_approval_request", "entity": "x", "data": {}}
    validate_workflow(base(allow("a", execute=[item], next="b"), allow("b", next="a")))


def test_foreach_settings_are_bounded():
    step = {
        "id": "f",
        "type": "foreach",
        "foreach": {"items": 3, "item_var": "1x", "concurrency": 0, "limit": 100_000, "steps": []},
    }
    found = problems_of(base(step))
    assert set(found) == {
        "steps[0].foreach.items",
        "steps[0].foreach.item_var",
        "steps[0].foreach.concurrency",
        "steps[0].foreach.limit",
        "steps[0].foreach.steps",
    }


def test_body_steps_cannot_route_wait_or_ask_for_approval():
    body = [
        check("c", next="x"),
        {"id": "w", "type": "wait", "wait": {"duration": "1s"}},
        {"id": "r", "type": "action", "action": {"type": "require_approval"}},
    ]
    found = problems_of(base({"id": "p", "type": "parallel", "parallel": {"steps": body}}))
    assert "do not route" in found["steps[0].parallel.steps[0].next"][0]
    assert "cannot be inside" in found["steps[0].parallel.steps[1].type"][0]
    assert "cannot require an approval" in found["steps[0].parallel.steps[2].action.type"][0]


def test_unknown_join_strategy():
    step = {
        "id": "p",
        "type": "parallel",
        "parallel": {"strategy": "majority", "steps": [check("c")]},
    }
    assert_problem(base(step), "steps[0].parallel.strategy", "unknown strategy")


def test_a_condition_step_needs_a_condition_or_a_rule():
    assert_problem(base({"id": "c", "type": "condition"}), "steps[0]", "exactly one of")
    validate_workflow(base({"id": "c", "type": "condition", "rule_id": "vip"}))


def test_steps_must_be_a_non_empty_list():
    assert_problem({**base(), "steps": []}, "steps", "non-empty list")


def test_the_wrapped_layout_needs_an_object_definition():
    found = problems_of({"workflow_id": "w", "version": 1, "name": "n", "definition": []})
    assert "definition" in found


def test_validate_definition_uses_its_prefix():
    with pytest.raises(DefinitionError) as caught:
        validate_definition({"trigger": {"type": "manual"}, "steps": [allow("a", next="zz")]})
    assert "definition.steps[0].next" in caught.value.as_dict()


def test_valid_workflows_come_back_normalised():
    canonical = validate_workflow(
        base({"id": "a", "type": "action", "action": {"action": "block"}})
    )
    assert canonical["definition"]["steps"][0]["action"] == {"type": "block", "reason": None}
