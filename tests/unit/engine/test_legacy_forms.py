"""Every form the normaliser accepts validates as its normalised form does (issue 19.7).

Validation reads the normalised steps, so a legacy form can neither be refused
for what its canonical form allows (the original service's `wait.on_timeout`
was reported as "step 'cancel' is unreachable") nor let through what it forbids.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import DefinitionError
from engine.validation import validate_workflow

ALLOW = {"id": "done", "type": "action", "action": {"type": "allow"}}
CANCEL = {"id": "cancel", "type": "action", "action": {"type": "block", "reason": "timed out"}}


def flat(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "workflow_id": "legacy",
        "version": "1",
        "name": "Legacy",
        "trigger": {"type": "event", "event": "order.created"},
        "steps": [copy.deepcopy(step) for step in steps],
    }


def wrapped(*steps: dict[str, Any]) -> dict[str, Any]:
    raw = flat(*steps)
    body = {key: raw.pop(key) for key in ("trigger", "steps")}
    return {**raw, "definition": body}


LEGACY_FORMS = {
    "wait with on_timeout inside the wait block": [
        {
            "id": "await",
            "type": "wait",
            "wait": {"event": "quote.decided", "timeout": "1h", "on_timeout": "cancel"},
            "next": "done",
        },
        ALLOW,
        CANCEL,
    ],
    "wait on_timeout inside the block, no timeout": [
        {"id": "await", "type": "wait", "wait": {"event": "x", "on_timeout": "cancel"}},
        CANCEL,
    ],
    "action given as a string": [{"id": "done", "type": "action", "action": "allow"}],
    "action named by 'action'": [
        {"id": "done", "type": "action", "action": {"action": "block", "reason": "no"}}
    ],
    "action named by both keys alike": [
        {"id": "done", "type": "action", "action": {"action": "allow", "type": "allow"}}
    ],
    "legacy action inside a parallel branch": [
        {
            "id": "fan",
            "type": "parallel",
            "parallel": {"steps": [{"id": "a", "type": "action", "action": {"action": "allow"}}]},
        }
    ],
    "legacy action inside a foreach body": [
        {
            "id": "each",
            "type": "foreach",
            "foreach": {
                "items": [1, 2],
                "steps": [{"id": "a", "type": "action", "action": "allow"}],
            },
        }
    ],
}


@pytest.mark.parametrize("layout", [flat, wrapped], ids=["flat", "wrapped"])
@pytest.mark.parametrize("steps", LEGACY_FORMS.values(), ids=LEGACY_FORMS.keys())
def test_a_legacy_form_validates_and_its_normalised_form_validates_the_same(
    layout: Any, steps: list[dict[str, Any]]
) -> None:
    normalised = validate_workflow(layout(*steps))

    assert validate_workflow(normalised) == normalised


def test_the_original_wait_form_keeps_its_timeout_route() -> None:
    normalised = validate_workflow(
        flat(*LEGACY_FORMS["wait with on_timeout inside the wait block"])
    )

    wait = normalised["definition"]["steps"][0]
    assert wait["on_timeout"] == "cancel"
    assert "on_timeout" not in wait["wait"]


def test_an_on_timeout_inside_the_wait_block_naming_no_step_is_refused() -> None:
    raw = flat({"id": "await", "type": "wait", "wait": {"event": "x", "on_timeout": "nowhere"}})

    with pytest.raises(DefinitionError) as caught:
        validate_workflow(raw)

    assert "unknown step 'nowhere'" in caught.value.as_dict()["steps[0].on_timeout"][0]


def test_two_different_on_timeouts_on_one_wait_are_refused() -> None:
    wait = {
        "id": "await",
        "type": "wait",
        "wait": {"event": "x", "on_timeout": "cancel"},
        "on_timeout": "done",
    }

    with pytest.raises(DefinitionError) as caught:
        validate_workflow(flat(wait, ALLOW, CANCEL))

    assert "steps[0].wait.on_timeout" in caught.value.as_dict()


def test_conflicting_action_keys_are_still_reported_where_the_caller_wrote_them() -> None:
    step = {"id": "done", "type": "action", "action": {"action": "allow", "type": "block"}}

    with pytest.raises(DefinitionError) as caught:
        validate_workflow(flat(step))

    assert "different actions" in caught.value.as_dict()["steps[0].action"][0]


def test_an_unknown_legacy_action_is_reported_at_its_legacy_key() -> None:
    step = {"id": "done", "type": "action", "action": {"action": "maybe"}}

    with pytest.raises(DefinitionError) as caught:
        validate_workflow(flat(step))

    assert "steps[0].action.action" in caught.value.as_dict()
