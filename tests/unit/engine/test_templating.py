import pytest

from engine.errors import TemplateError
from engine.templating import TemplateRenderer, compile_problems

CONTEXT = {
    "order": {"id": "o-1", "total": 15000, "items": [{"sku": "a"}, {"sku": "b"}], "paid": False},
    "customer": {"name": "Ann", "tags": {"vip": True}},
    "note": "hello",
}


@pytest.fixture
def renderer():
    return TemplateRenderer(secrets={"api_token": "s3cr3t-value"})


def test_a_string_that_is_one_expression_yields_the_raw_value(renderer):
    assert renderer.render("{{ order.total }}", CONTEXT) == 15000
    assert renderer.render("{{order.paid}}", CONTEXT) is False
    assert renderer.render("{{ order.items }}", CONTEXT) == [{"sku": "a"}, {"sku": "b"}]
    assert renderer.render("{{ customer.tags }}", CONTEXT) == {"vip": True}


def test_text_around_an_expression_renders_as_text(renderer):
    assert renderer.render("Order {{ order.id }}: ${{ order.total }}", CONTEXT) == (
        "Order o-1: $15000"
    )
    assert renderer.render("{{ order.id }}-{{ order.total }}", CONTEXT) == "o-1-15000"


def test_nested_structures_are_walked_and_keys_are_kept(renderer):
    value = {"{{ x }}": ["{{ order.id }}", 3, None, {"deep": "{{ customer.name }}"}]}
    assert renderer.render(value, CONTEXT) == {"{{ x }}": ["o-1", 3, None, {"deep": "Ann"}]}


def test_length_works_as_an_attribute_and_as_a_filter(renderer):
    assert renderer.render("{{ order.items.length }}", CONTEXT) == 2
    assert renderer.render("{{ order.items | length }}", CONTEXT) == 2
    assert renderer.render("{{ note.length }}", CONTEXT) == 5
    assert renderer.render("{{ customer.length }}", CONTEXT) == 2


def test_object_fields_win_over_dict_methods(renderer):
    # order.items is the field, not dict.items
    assert renderer.render("{{ order.items[0].sku }}", CONTEXT) == "a"


def test_missing_fields_are_none_as_a_whole_value_and_empty_in_text(renderer):
    assert renderer.render("{{ device.fingerprint }}", CONTEXT) is None
    assert renderer.render("id={{ device.fingerprint.deeper }}!", CONTEXT) == "id=!"


def test_secrets_are_readable_when_rendering(renderer):
    assert renderer.render("Bearer {{ secrets.api_token }}", CONTEXT) == "Bearer s3cr3t-value"


def test_traces_never_hold_a_secret(renderer):
    value = {"auth": "Bearer {{ secrets.api_token }}", "raw": "{{ secrets.api_token }}"}
    assert renderer.render_for_trace(value, CONTEXT) == {"auth": "Bearer ***", "raw": "***"}


def test_redaction_scrubs_secret_values_that_arrive_through_data(renderer):
    context = {"echo": "token is s3cr3t-value"}
    assert renderer.render_for_trace("{{ echo }}", context) == "token is ***"
    assert renderer.redact({"a": ["s3cr3t-value"]}) == {"a": ["***"]}


def test_values_without_templates_are_returned_unchanged(renderer):
    assert renderer.render("plain {text}", CONTEXT) == "plain {text}"
    assert renderer.render(42, CONTEXT) == 42


def test_raw_values_are_copies_that_cannot_change_the_context(renderer):
    items = renderer.render("{{ order.items }}", CONTEXT)
    items.append("mutated")
    assert len(CONTEXT["order"]["items"]) == 2


@pytest.mark.parametrize(
    "template",
    [
        "{{ 1 / 0 }}",
        "{{ order.total + 'x' }}",
        "{{ missing + 1 }}",
        "{{ [].append(1) }}",
        "{{ 'a' * 1000000 }}",
        "{{ 2 ** 100000 }}",
    ],
)
def test_runtime_failures_raise_template_error_naming_the_template(renderer, template):
    with pytest.raises(TemplateError) as caught:
        renderer.render(template, CONTEXT)
    assert template in str(caught.value)


def test_the_sandbox_hides_python_internals(renderer):
    assert renderer.render("{{ order.__class__ }}", CONTEXT) is None
    assert renderer.render("{{ note.upper.__globals__ }}", CONTEXT) is None


def test_overlong_templates_are_refused(renderer):
    with pytest.raises(TemplateError, match="longer than"):
        renderer.render("{{ x }}" + " " * 20_000, CONTEXT)


def test_a_syntax_error_at_render_time_is_a_template_error(renderer):
    with pytest.raises(TemplateError, match="does not compile"):
        renderer.render("{{ order. }}", CONTEXT)


def test_compile_problems_point_at_each_broken_string():
    value = {"message": "Hi {{ name", "ok": ["{{ fine }}", "{% if %}"]}
    problems = compile_problems(value, "steps[1].execute[0]")
    assert [p.path for p in problems] == [
        "steps[1].execute[0].message",
        "steps[1].execute[0].ok[1]",
    ]
    assert all("does not compile" in p.message for p in problems)


def test_compiled_templates_are_reused(renderer):
    for total in range(3):
        assert renderer.render("{{ order.total }}", {"order": {"total": total}}) == total
