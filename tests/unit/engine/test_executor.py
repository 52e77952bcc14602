from datetime import UTC, datetime, timedelta

import pytest

from engine.definition import Step
from engine.errors import EngineError, StepError
from engine.executor import run_step
from engine.port import HttpResponse
from engine.state import ExecutionResult
from engine.templating import TemplateRenderer
from tests.unit.engine.fakes import FakePorts, failing_http

RENDERER = TemplateRenderer(secrets={"token": "tok-abcdef"})
CONTEXT = {
    "order": {"id": "o-1", "total": 250, "items": [1, 2, 3]},
    "customer": {"name": "Ann", "email": "ann@example.com"},
}


def run(step_dict, context=CONTEXT, ports=None, **kwargs):
    ports = ports if ports is not None else FakePorts()
    outcome = run_step(
        Step.from_dict(step_dict), context, ports, RENDERER, idempotency_key="ex-1:s:1", **kwargs
    )
    return outcome, ports


def action(kind, *items, **more):
    return {
        "id": "s",
        "type": "action",
        "action": {"type": kind, "reason": "because {{ order.id }}"},
        "execute": list(items),
        **more,
    }


def test_a_true_condition_goes_to_on_true():
    step = {
        "id": "s",
        "type": "condition",
        "on_true": "yes",
        "on_false": "no",
        "condition": {"field": "order.total", "operator": "gt", "value": 100},
    }
    outcome, _ = run(step)
    assert outcome.next_step_id == "yes"
    assert outcome.condition_result is True
    assert outcome.output == {"result": True}
    assert outcome.context_updates == {"steps": {"s": {"output": {"result": True}}}}
    assert outcome.decisions[0]["actual"] == 250


def test_a_false_condition_goes_to_on_false_or_falls_through_to_next():
    step = {
        "id": "s",
        "type": "condition",
        "on_false": "no",
        "next": "after",
        "condition": {"field": "order.total", "operator": "gt", "value": 1000},
    }
    assert run(step)[0].next_step_id == "no"
    del step["on_false"]
    assert run(step)[0].next_step_id == "after"
    del step["next"]
    assert run(step)[0].next_step_id is None


def test_a_condition_step_can_use_a_stored_rule():
    step = {"id": "s", "type": "condition", "rule_id": "big", "on_true": "yes"}
    rules = {"big": [{"field": "order.total", "operator": "gte", "value": 250}]}
    assert run(step, rules=rules.get)[0].next_step_id == "yes"


def test_an_unknown_rule_fails_the_step_as_not_found():
    step = {"id": "s", "type": "condition", "rule_id": "ghost"}
    with pytest.raises(StepError) as caught:
        run(step, rules={}.get)
    assert caught.value.code == "not_found"


@pytest.mark.parametrize(
    ("kind", "result"),
    [
        ("allow", ExecutionResult.ALLOWED),
        ("block", ExecutionResult.BLOCKED),
        ("execute", ExecutionResult.EXECUTED),
    ],
)
def test_actions_set_the_result_and_still_run_their_execute_list(kind, result):
    outcome, ports = run(
        action(kind, {"type": "log", "message": "hi {{ customer.name }}"}, next="n")
    )
    assert outcome.result is result
    assert outcome.next_step_id == "n"
    assert outcome.reason == "because o-1"
    assert ports.logs == ["hi Ann"]
    assert outcome.output == {
        "action": kind,
        "reason": "because o-1",
        "results": [{"message": "hi Ann"}],
    }


def test_an_execute_step_outputs_each_items_result_in_order():
    step = {
        "id": "s",
        "type": "execute",
        "execute": [
            {"type": "create_record", "entity": "po", "data": {"n": "{{ order.total }}"}},
            {"type": "log", "message": "done"},
        ],
    }
    outcome, ports = run(step)
    assert outcome.result is ExecutionResult.EXECUTED
    assert outcome.output["results"] == [
        {"entity": "po", "entity_id": "po-1", "data": {"n": 250}},
        {"message": "done"},
    ]
    assert outcome.context_updates["steps"]["s"]["output"] == outcome.output
    assert ports.records == {("po", "po-1"): {"n": 250}}


def test_http_items_send_rendered_requests_with_idempotency_keys():
    step = {
        "id": "s",
        "type": "execute",
        "timeout": "20s",
        "execute": [
            {"type": "log", "message": "first"},
            {
                "type": "http_request",
                "url": "https://api.example.com/o/{{ order.id }}",
                "method": "post",
                "headers": {"Authorization": "Bearer {{ secrets.token }}"},
                "body": {"amount": "{{ order.total }}", "items": "{{ order.items.length }}"},
            },
            {"type": "webhook", "url": "https://hooks.example.com/x", "timeout": "5s"},
        ],
    }
    outcome, ports = run(step)
    first, second = ports.requests
    assert (first.method, first.url) == ("POST", "https://api.example.com/o/o-1")
    assert first.headers == {"Authorization": "Bearer tok-abcdef"}
    assert first.body == {"amount": 250, "items": 3}
    assert first.idempotency_key == "ex-1:s:1:1"
    assert first.timeout_seconds == 20
    assert (second.method, second.idempotency_key, second.timeout_seconds) == (
        "POST",
        "ex-1:s:1:2",
        5,
    )
    assert outcome.output["results"][1] == {
        "status_code": 200,
        "headers": {"content-type": "application/json"},
        "body": {"ok": True},
    }


def test_the_trace_input_never_holds_a_secret():
    step = {
        "id": "s",
        "type": "execute",
        "execute": [
            {
                "type": "webhook",
                "url": "https://x.example.com",
                "headers": {"X-Key": "{{ secrets.token }}"},
            }
        ],
    }
    outcome, _ = run(step)
    assert outcome.input["execute"][0]["headers"] == {"X-Key": "***"}
    assert "tok-abcdef" not in repr(outcome.input)


@pytest.mark.parametrize(
    ("code", "status"),
    [("http_5xx", 503), ("http_4xx", 404), ("connection", None), ("timeout", None)],
)
def test_a_failing_item_fails_the_step_with_its_error(code, status):
    step = {
        "id": "s",
        "type": "execute",
        "execute": [
            {"type": "log", "message": "before"},
            {"type": "http_request", "url": "https://x.example.com"},
            {"type": "log", "message": "never"},
        ],
    }
    ports = FakePorts(http=failing_http(code, status))
    with pytest.raises(StepError) as caught:
        run(step, ports=ports)
    assert caught.value.code == code
    assert caught.value.status_code == status
    assert caught.value.details["item"] == 1
    assert ports.logs == ["before"]


def test_a_non_2xx_answer_from_a_lax_port_still_fails_the_step():
    ports = FakePorts(http=lambda request: HttpResponse(502, {}, "bad gateway"))
    with pytest.raises(StepError) as caught:
        run(
            {
                "id": "s",
                "type": "execute",
                "execute": [{"type": "webhook", "url": "https://x.example.com"}],
            },
            ports=ports,
        )
    assert (caught.value.code, caught.value.status_code, caught.value.retryable) == (
        "http_5xx",
        502,
        True,
    )


@pytest.mark.parametrize(
    "url", ["{{ integrations.erp.webhook_url }}", "ftp://files.example.com", "not a url"]
)
def test_http_urls_must_render_to_http_or_https(url):
    with pytest.raises(StepError) as caught:
        run({"id": "s", "type": "execute", "execute": [{"type": "webhook", "url": url}]})
    assert caught.value.code == "validation"
    assert not caught.value.retryable


def test_template_errors_fail_the_step_with_code_template():
    with pytest.raises(StepError) as caught:
        run({"id": "s", "type": "execute", "execute": [{"type": "log", "message": "{{ 1 / 0 }}"}]})
    assert caught.value.code == "template"
    assert not caught.value.retryable


def test_notify_flattens_recipients_and_drops_empty_ones():
    step = {
        "id": "s",
        "type": "execute",
        "execute": [
            {
                "type": "notify",
                "subject": "Order {{ order.id }}",
                "recipients": [
                    "{{ customer.email }}",
                    "{{ missing.email }}",
                    "{{ team }}",
                    "slack:#ops",
                ],
                "message": "Total {{ order.total }}",
            }
        ],
    }
    outcome, ports = run(step, context={**CONTEXT, "team": ["a@x.io", "b@x.io"]})
    (sent,) = ports.notifications
    assert sent.recipients == ("ann@example.com", "a@x.io", "b@x.io", "slack:#ops")
    assert (sent.message, sent.subject) == ("Total 250", "Order o-1")
    assert sent.idempotency_key == "ex-1:s:1:0"
    assert outcome.output["results"] == [{"sent": 4}]


def test_notify_with_no_recipient_left_fails():
    step = {
        "id": "s",
        "type": "execute",
        "execute": [{"type": "notify", "recipients": ["{{ nobody }}"], "message": "x"}],
    }
    with pytest.raises(StepError, match="no recipients"):
        run(step)


def test_record_items_update_and_delete():
    ports = FakePorts()
    ports.records[("quote", "q-1")] = {"status": "new", "total": 1}
    step = {
        "id": "s",
        "type": "execute",
        "execute": [
            {
                "type": "update_record",
                "entity": "quote",
                "entity_id": "{{ quote.id }}",
                "data": {"status": "expired"},
            },
            {"type": "delete_record", "entity": "quote", "entity_id": "q-1"},
        ],
    }
    outcome, _ = run(step, context={"quote": {"id": "q-1"}}, ports=ports)
    assert outcome.output["results"][0]["data"] == {"status": "expired", "total": 1}
    assert ports.records == {}


def test_update_record_needs_an_entity_id_after_rendering():
    step = {
        "id": "s",
        "type": "execute",
        "execute": [{"type": "update_record", "entity": "quote", "entity_id": "{{ quote.id }}"}],
    }
    with pytest.raises(StepError, match="entity_id is empty"):
        run(step)


def test_set_merges_values_into_the_context_and_later_items_see_them():
    step = {
        "id": "s",
        "type": "execute",
        "execute": [
            {"type": "set", "values": {"order": {"flag": "{{ order.total > 100 }}"}, "n": 1}},
            {"type": "log", "message": "flag={{ order.flag }} id={{ order.id }}"},
            {"type": "log", "message": "{{ steps.s.output.results[1].message }}!"},
        ],
    }
    outcome, ports = run(step)
    assert outcome.context_updates["order"] == {"flag": True}
    assert outcome.context_updates["n"] == 1
    assert ports.logs == ["flag=True id=o-1", "flag=True id=o-1!"]


def test_an_approval_item_becomes_the_steps_approval_request_after_the_other_items():
    step = action(
        "block",
        {
            "type": "create_approval_request",
            "entity": "order",
            "entity_id": "{{ order.id }}",
            "data": {
                "approver_role": "sales_manager",
                "expires_in": "4h",
                "reason": "big",
                "total": "{{ order.total }}",
            },
        },
        {
            "type": "notify",
            "recipients": ["role:sales_manager"],
            "message": "see {{ approval_url }}",
        },
    )
    outcome, ports = run(step, context={**CONTEXT, "approval_url": "https://app/approvals/1"})
    approval = outcome.approval
    assert (approval.entity, approval.entity_id, approval.approver_role) == (
        "order",
        "o-1",
        "sales_manager",
    )
    assert approval.expires_in == timedelta(hours=4)
    assert approval.reason == "big"
    assert approval.data["total"] == 250
    assert outcome.result is ExecutionResult.BLOCKED
    assert ports.notifications[0].message == "see https://app/approvals/1"


def test_require_approval_without_an_item_uses_reason_and_metadata():
    step = action("require_approval", metadata={"approver_role": "finance", "expires_in": "2d"})
    outcome, _ = run(step)
    assert outcome.result is None
    assert outcome.approval.approver_role == "finance"
    assert outcome.approval.reason == "because o-1"
    assert outcome.approval.expires_in == timedelta(days=2)


def test_an_approval_without_expiry_expires_in_a_day():
    step = action("require_approval")
    assert run(step)[0].approval.expires_in == timedelta(hours=24)


def test_an_event_wait_returns_a_request_with_the_match_rendered_now():
    step = {
        "id": "w",
        "type": "wait",
        "next": "after",
        "wait": {
            "event": "quote.reviewed",
            "timeout": "48h",
            "match": {"field": "quote.id", "operator": "eq", "value": "{{ quote.id }}"},
        },
    }
    outcome, ports = run(step, context={"quote": {"id": "q-9"}})
    assert outcome.wait.event == "quote.reviewed"
    assert outcome.wait.match == {"field": "quote.id", "operator": "eq", "value": "q-9"}
    assert outcome.wait.due_at(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(2024, 1, 3, tzinfo=UTC)
    assert outcome.next_step_id == "after"
    assert ports.requests == []
    assert ports.logs == []


def test_time_waits_by_duration_or_until():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    by_duration = run({"id": "w", "type": "wait", "wait": {"duration": "90m"}})[0].wait
    assert by_duration.due_at(now) == now + timedelta(minutes=90)
    until = run(
        {"id": "w", "type": "wait", "wait": {"until": "{{ due }}"}},
        context={"due": "2024-02-01T10:00:00"},
    )[0].wait
    assert until.due_at(now) == datetime(2024, 2, 1, 10, tzinfo=UTC)


def test_a_wait_until_that_renders_to_garbage_fails():
    with pytest.raises(StepError, match="ISO"):
        run({"id": "w", "type": "wait", "wait": {"until": "{{ due }}"}}, context={"due": "soon"})


def test_parallel_and_foreach_steps_are_not_run_by_run_step():
    step = {
        "id": "p",
        "type": "parallel",
        "parallel": {
            "steps": [
                {"id": "c", "type": "condition", "condition": {"field": "x", "operator": "exists"}}
            ]
        },
    }
    with pytest.raises(EngineError, match="fanout"):
        run(step)
