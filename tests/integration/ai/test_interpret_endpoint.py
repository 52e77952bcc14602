"""POST /ai/interpret: description -> model -> parse -> validate -> one repair."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from api.ai.interpretation import EXAMPLE, SYSTEM_PROMPT, extract_json_object
from engine.validation import validate_workflow
from tests.integration.ai.conftest import API, audit_entries
from tests.integration.ai.wire import ProviderServer, anthropic_message, openai_completion
from tests.support import Caller

pytestmark = pytest.mark.integration

DESCRIPTION = (
    "When an order is created over 1000, ask finance to approve it, then email the customer."
)

VALID = copy.deepcopy(EXAMPLE)
DANGLING = copy.deepcopy(EXAMPLE)
DANGLING["definition"]["steps"][0]["on_true"] = "ask_someone"
STILL_WRONG = copy.deepcopy(DANGLING)
STILL_WRONG["definition"]["steps"][1]["type"] = "approve"


def fenced(workflow: dict[str, Any]) -> str:
    return f"Here is the workflow:\n```json\n{json.dumps(workflow, indent=2)}\n```\nLet me know!"


def test_the_example_in_the_system_prompt_is_valid() -> None:
    validate_workflow(EXAMPLE)
    assert json.dumps(EXAMPLE, separators=(",", ":")) in SYSTEM_PROMPT


@pytest.mark.parametrize(
    "answer",
    [json.dumps(VALID), fenced(VALID), "Sure! " + json.dumps(VALID) + " Hope it helps {:"],
)
def test_the_workflow_is_found_in_bare_fenced_or_chatty_answers(answer: str) -> None:
    assert extract_json_object(answer) == VALID


def test_a_valid_first_answer_is_returned_normalised(
    anthropic_app: Any, claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_message(fenced(VALID), input_tokens=900, output_tokens=300))

    response = claude_user.post(f"{API}/ai/interpret", {"description": DESCRIPTION})

    assert response.status_code == 200, response.json
    assert response.json["valid"] is True
    assert response.json["attempts"] == 1
    assert response.json["errors"] == {}
    assert response.json["definition"] == validate_workflow(VALID)
    assert response.json["usage"] == {
        "input_tokens": 900,
        "output_tokens": 300,
        "total_tokens": 1200,
    }
    (sent,) = anthropic.requests
    assert sent.body["system"] == SYSTEM_PROMPT
    assert DESCRIPTION in sent.body["messages"][0]["content"]
    assert sent.body["max_tokens"] == 4096
    assert sent.body["temperature"] == 0.0
    (entry,) = audit_entries(anthropic_app, claude_user, "ai_interpret")
    assert entry["changes"]["attempts"] == 1 and entry["changes"]["valid"] is True
    assert entry["changes"]["input_tokens"] == 900
    assert DESCRIPTION not in json.dumps(entry["changes"])


def test_an_invalid_answer_is_repaired_once_with_the_errors(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    first, second = fenced(DANGLING), json.dumps(VALID)
    anthropic.script(
        anthropic_message(first, input_tokens=100, output_tokens=50),
        anthropic_message(second, input_tokens=200, output_tokens=60),
    )

    response = claude_user.post(f"{API}/ai/interpret", {"description": DESCRIPTION})

    assert response.status_code == 200
    assert response.json["valid"] is True
    assert response.json["attempts"] == 2
    assert response.json["usage"] == {
        "input_tokens": 300,
        "output_tokens": 110,
        "total_tokens": 410,
    }
    repair = anthropic.requests[1].body["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert repair[1]["content"] == first
    assert "definition.steps[0].on_true" in repair[2]["content"]
    assert "ask_someone" in repair[2]["content"]


def test_an_answer_that_stays_invalid_is_returned_with_its_errors(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(
        anthropic_message(json.dumps(DANGLING)), anthropic_message(json.dumps(STILL_WRONG))
    )

    response = claude_user.post(f"{API}/ai/interpret", {"description": DESCRIPTION})

    assert response.status_code == 200
    assert response.json["valid"] is False
    assert response.json["attempts"] == 2
    assert response.json["definition"] == STILL_WRONG
    errors = response.json["errors"]
    assert "definition.steps[0].on_true" in errors
    assert "definition.steps[1].type" in errors
    assert len(anthropic.requests) == 2


def test_an_answer_without_json_is_asked_again(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_message("I cannot do that."), anthropic_message("Still no."))

    response = claude_user.post(f"{API}/ai/interpret", {"description": DESCRIPTION})

    assert response.json["valid"] is False
    assert response.json["errors"] == {"": ["the answer contained no JSON object"]}
    assert response.json["definition"] == {}
    assert "no JSON object" in anthropic.requests[1].body["messages"][2]["content"]


def test_the_requested_workflow_id_and_name_are_kept(
    gpt_user: Caller, openai: ProviderServer
) -> None:
    openai.script(openai_completion(json.dumps(VALID), prompt_tokens=10, completion_tokens=5))

    response = gpt_user.post(
        f"{API}/ai/interpret",
        {
            "description": DESCRIPTION,
            "workflow_id": "orders-review",
            "name": "Orders review",
            "model": "gpt-big",
        },
    )

    assert response.status_code == 200
    assert response.json["definition"]["workflow_id"] == "orders-review"
    assert response.json["definition"]["name"] == "Orders review"
    (sent,) = openai.requests
    assert sent.body["model"] == "gpt-big"
    assert sent.body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert '"workflow_id": "orders-review"' in sent.body["messages"][1]["content"]


def test_a_missing_version_defaults_to_1_0_0(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    unversioned = {k: v for k, v in VALID.items() if k != "version"}
    anthropic.script(anthropic_message(json.dumps(unversioned)))

    response = claude_user.post(f"{API}/ai/interpret", {"description": DESCRIPTION})

    assert response.json["valid"] is True
    assert response.json["definition"]["version"] == "1.0.0"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "description"),
        ({"description": "short"}, "description"),
        ({"description": DESCRIPTION, "workflow_id": "bad id"}, "workflow_id"),
    ],
)
def test_invalid_interpret_requests_are_422(
    claude_user: Caller, anthropic: ProviderServer, body: dict[str, Any], field: str
) -> None:
    response = claude_user.post(f"{API}/ai/interpret", body)

    assert response.status_code == 422
    assert field in response.json["errors"]
    assert anthropic.requests == []


def test_a_created_interpretation_deploys_as_is(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    anthropic.script(anthropic_message(json.dumps(VALID)))
    definition = claude_user.post(f"{API}/ai/interpret", {"description": DESCRIPTION}).json[
        "definition"
    ]

    created = claude_user.post(f"{API}/workflows", definition)

    assert created.status_code == 201, created.json
    assert created.json["workflow_id"] == VALID["workflow_id"]


def test_each_model_call_of_a_repair_is_counted(
    claude_user: Caller, anthropic: ProviderServer
) -> None:
    from tests.integration.ai.conftest import sample

    labels = {"model": "claude-test", "status": "success"}
    before = sample("ai_requests_total", labels)
    anthropic.script(anthropic_message(json.dumps(DANGLING)), anthropic_message(json.dumps(VALID)))

    claude_user.post(f"{API}/ai/interpret", {"description": DESCRIPTION})

    assert sample("ai_requests_total", labels) - before == 2
