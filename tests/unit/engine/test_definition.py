from datetime import timedelta

import pytest

from engine.definition import Definition, RetryPolicy, Step, normalise_workflow, wants_enabled
from engine.errors import DefinitionError, StepError
from tests.unit.engine.fakes import load_example

FLAT = {
    "workflow_id": "wf",
    "version": "1.0.0",
    "name": "Flat",
    "enabled": False,
    "trigger": {"type": "manual"},
    "timeout": "10m",
    "steps": [
        {"id": "a", "type": "action", "action": {"action": "block", "reason": "no"}, "name": "A"},
        {"id": "b", "type": "action", "action": {"type": "allow"}, "on_error": "a"},
    ],
}


def test_the_flat_layout_normalises_to_the_wrapped_canonical_form():
    canonical = normalise_workflow(FLAT)
    assert set(canonical) == {"workflow_id", "version", "name", "description", "tags", "definition"}
    assert canonical["definition"]["timeout"] == "10m"
    assert canonical["definition"]["context"] == {"load": []}
    first, second = canonical["definition"]["steps"]
    assert first["action"] == {"type": "block", "reason": "no"}
    assert first["name"] == "A"
    assert second["action"] == {"type": "allow", "reason": None}
    assert second["on_error"] == "a"


def test_the_wrapped_layout_normalises_to_the_same_form():
    wrapped = {
        "workflow_id": "wf",
        "version": "1.0.0",
        "name": "Flat",
        "definition": {k: FLAT[k] for k in ("trigger", "timeout", "steps")},
    }
    assert normalise_workflow(wrapped) == normalise_workflow(FLAT)


def test_integer_versions_are_stored_as_strings_and_enabled_is_separate():
    assert normalise_workflow({**FLAT, "version": 3})["version"] == "3"
    assert wants_enabled(FLAT) is False
    assert wants_enabled({}) is None
    assert "enabled" not in normalise_workflow(FLAT)


def test_a_missing_timeout_defaults_to_one_hour():
    body = {"trigger": {"type": "manual"}, "steps": FLAT["steps"]}
    assert Definition.from_dict(body).timeout == timedelta(hours=1)


def test_wait_on_timeout_moves_to_the_step():
    step = Step.from_dict({"id": "w", "type": "wait", "wait": {"event": "x", "on_timeout": "z"}})
    assert step.on_timeout == "z"
    assert step.wait is not None
    assert step.wait.event == "x"


def test_definitions_round_trip_through_dicts():
    raw = load_example("quote-multi-level-approval")
    definition = Definition.from_dict(normalise_workflow(raw)["definition"])
    again = Definition.from_dict(definition.to_dict())
    assert again == definition
    assert definition.first_step.id == "check_quote_value"
    assert definition.step("wait_for_rep_decision").wait.timeout == timedelta(hours=48)


def test_nested_steps_are_found_by_id():
    definition = Definition.from_dict(
        normalise_workflow(load_example("cart-fraud-detection"))["definition"]
    )
    branch = definition.step("check_external_fraud_api")
    assert branch.retry == RetryPolicy(
        max_attempts=3, backoff="exponential", retry_on=("timeout", "5xx")
    )
    with pytest.raises(KeyError):
        definition.step("nope")


def test_unknown_step_keys_survive_a_round_trip():
    step = Step.from_dict({"id": "a", "type": "action", "action": "allow", "x_ui": {"pos": 1}})
    assert step.to_dict()["x_ui"] == {"pos": 1}


def test_garbage_definitions_raise_definition_error():
    with pytest.raises(DefinitionError):
        Definition.from_dict({"steps": [{"type": "action"}]})


def fixed_rng():
    return 0.5


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        ("fixed", [2, 2, 2, 2]),
        ("linear", [2, 4, 6, 8]),
        ("exponential", [2, 4, 8, 10]),
    ],
)
def test_retry_delays_grow_by_backoff_and_stop_at_the_cap(backoff, delays):
    policy = RetryPolicy.from_dict(
        {"max_attempts": 5, "backoff": backoff, "initial_interval": "2s", "max_interval": "10s"}
    )
    assert [policy.delay(a, fixed_rng).total_seconds() for a in range(1, 5)] == delays


def test_jitter_shortens_delays_by_a_random_fraction():
    policy = RetryPolicy.from_dict({"initial_interval": "10s", "jitter": 0.2})
    assert policy.delay(1, lambda: 0.5) == timedelta(seconds=9)
    assert policy.delay(1, lambda: 0.0) == timedelta(seconds=10)
    assert RetryPolicy.from_dict({"initial_interval": "10s", "jitter": True}).delay(
        1, lambda: 1.0
    ) == timedelta(seconds=5)


def test_huge_attempt_numbers_do_not_overflow():
    policy = RetryPolicy(backoff="exponential", max_interval=timedelta(minutes=5))
    assert policy.delay(10_000, fixed_rng) == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("retry_on", "error", "expected"),
    [
        (("*",), StepError("timeout", "t"), True),
        (("*",), StepError("http_5xx", "x", status_code=503), True),
        (("*",), StepError("connection", "x"), True),
        (("*",), StepError("http_4xx", "x", status_code=429), True),
        (("*",), StepError("http_4xx", "x", status_code=400), False),
        (("*",), StepError("template", "x"), False),
        (("*",), StepError("validation", "x", retryable=True), True),
        (("timeout", "5xx"), StepError("http_5xx", "x", status_code=500), True),
        (("timeout", "5xx"), StepError("connection", "x"), False),
        (("4xx",), StepError("http_4xx", "x", status_code=404), True),
        (("connection",), StepError("connection", "x"), True),
        (("out_of_stock",), StepError("out_of_stock", "x"), True),
        ((), StepError("timeout", "x"), False),
    ],
)
def test_retry_on_classes_and_codes(retry_on, error, expected):
    assert RetryPolicy(max_attempts=3, retry_on=retry_on).applies_to(error) is expected
