from engine.dryrun import dry_run
from engine.state import ExecutionResult, ExecutionStatus
from engine.templating import TemplateRenderer
from tests.unit.engine.fakes import NOW, definition_of

RENDERER = TemplateRenderer()


def test_a_loop_that_never_exits_stops_at_max_steps():
    definition = definition_of(
        {
            "id": "tick",
            "type": "execute",
            "execute": [{"type": "log", "message": "t"}],
            "next": "done?",
        },
        {
            "id": "done?",
            "type": "condition",
            "on_true": "end",
            "on_false": "tick",
            "condition": {"field": "finished", "operator": "eq", "value": True},
        },
        {"id": "end", "type": "action", "action": "allow"},
    )
    report = dry_run(definition, {}, now=NOW, renderer=RENDERER, max_steps=10)
    assert report.status is ExecutionStatus.FAILED
    assert len(report.path) == 10
    assert "max" in report.message or "stopped" in report.message


def test_foreach_runs_each_item_and_joins():
    definition = definition_of(
        {
            "id": "each",
            "type": "foreach",
            "next": "end",
            "foreach": {
                "items": "{{ lines }}",
                "item_var": "line",
                "steps": [
                    {
                        "id": "say",
                        "type": "execute",
                        "execute": [{"type": "log", "message": "{{ index }}={{ line.sku }}"}],
                    }
                ],
            },
        },
        {"id": "end", "type": "action", "action": "allow"},
    )
    report = dry_run(
        definition, {"lines": [{"sku": "a"}, {"sku": "b"}]}, now=NOW, renderer=RENDERER
    )
    assert report.path == ("each", "end")
    assert [e["message"] for e in report.effects] == ["0=a", "1=b"]
    assert report.context["steps"]["each"]["output"]["items"] == [
        {"say": {"results": [{"message": "0=a"}]}},
        {"say": {"results": [{"message": "1=b"}]}},
    ]


def test_a_foreach_over_too_many_items_fails_the_step():
    definition = definition_of(
        {
            "id": "each",
            "type": "foreach",
            "foreach": {
                "items": "{{ lines }}",
                "limit": 1,
                "steps": [
                    {"id": "say", "type": "execute", "execute": [{"type": "log", "message": "x"}]}
                ],
            },
        },
    )
    report = dry_run(definition, {"lines": [1, 2]}, now=NOW, renderer=RENDERER)
    assert (report.status, report.result) == (ExecutionStatus.FAILED, ExecutionResult.FAILED)
    assert "limit" in report.message


def test_a_time_wait_stops_the_run_unless_its_end_is_supplied():
    definition = definition_of(
        {"id": "nap", "type": "wait", "wait": {"duration": "5m"}, "next": "end"},
        {"id": "end", "type": "action", "action": "block"},
    )
    waiting = dry_run(definition, {}, now=NOW, renderer=RENDERER)
    assert waiting.waiting["kind"] == "time"
    done = dry_run(definition, {}, now=NOW, renderer=RENDERER, events={"nap": {}})
    assert (done.path, done.result) == (("nap", "end"), ExecutionResult.BLOCKED)


def test_a_step_error_routed_to_on_error_is_readable_by_the_next_step():
    definition = definition_of(
        {
            "id": "bad",
            "type": "execute",
            "on_error": "report",
            "execute": [{"type": "webhook", "url": "{{ nowhere }}"}],
        },
        {
            "id": "report",
            "type": "execute",
            "execute": [{"type": "log", "message": "{{ error.step_id }}: {{ error.code }}"}],
        },
    )
    report = dry_run(definition, {}, now=NOW, renderer=RENDERER)
    assert report.path == ("bad", "report")
    assert report.effects[-1]["message"] == "bad: validation"
    assert report.result is ExecutionResult.EXECUTED
