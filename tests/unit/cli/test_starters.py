"""Every starter workflow validates with the engine, exactly as `templates init` writes it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.starters import STARTERS
from engine.validation import validate_workflow

REQUIRED = {"event-notify", "approval", "webhook-retry", "schedule"}


def test_the_required_starters_exist() -> None:
    assert set(STARTERS) >= REQUIRED


@pytest.mark.parametrize("name", sorted(STARTERS))
def test_the_starter_validates_with_the_engine(name: str) -> None:
    written = CliRunner().invoke(cli, ["templates", "init", name])

    assert written.exit_code == 0, written.output
    workflow = validate_workflow(json.loads(written.output))
    assert workflow["workflow_id"] == STARTERS[name].workflow["workflow_id"]


@pytest.mark.parametrize(
    ("name", "trigger"),
    [
        ("event-notify", "event"),
        ("approval", "event"),
        ("webhook-retry", "event"),
        ("schedule", "schedule"),
    ],
)
def test_the_starter_uses_the_trigger_its_name_promises(name: str, trigger: str) -> None:
    assert STARTERS[name].workflow["definition"]["trigger"]["type"] == trigger


def test_the_webhook_starter_retries_with_exponential_backoff() -> None:
    step = STARTERS["webhook-retry"].workflow["definition"]["steps"][0]

    assert step["retry"]["backoff"] == "exponential"
    assert step["on_error"] == "record_failure"


def test_rendering_with_a_workflow_id_does_not_change_the_starter() -> None:
    rendered = STARTERS["hello"].render("greeter")

    assert rendered["workflow_id"] == "greeter"
    assert STARTERS["hello"].workflow["workflow_id"] == "hello"
    validate_workflow(rendered)
