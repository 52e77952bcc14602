"""templates, validate, deploy, list, show, enable, disable against a running API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.starters import STARTERS
from tests.integration.cli.conftest import Iwctl

pytestmark = pytest.mark.integration

INVALID = {
    "workflow_id": "broken",
    "version": "1.0.0",
    "name": "Broken",
    "definition": {
        "trigger": {"type": "event", "event": "order.created"},
        "steps": [
            {
                "id": "a",
                "type": "condition",
                "condition": {"field": "x", "operator": "eq", "value": 1},
                "on_true": "nowhere",
            },
            {"id": "b", "type": "teleport"},
        ],
    },
}


def write(directory: Path, name: str, content: object) -> str:
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_templates_are_listed(iwctl: Iwctl) -> None:
    table = iwctl.ok("templates", "list").stdout
    listed = iwctl.ok("templates", "list", "--json").json()

    for name in ("event-notify", "approval", "webhook-retry", "schedule", "hello"):
        assert name in table
    assert {row["name"] for row in listed} == set(STARTERS)


@pytest.mark.parametrize("name", sorted(STARTERS))
def test_every_template_validates_offline_and_deploys(cli: Iwctl, name: str) -> None:
    cli.ok("templates", "init", name, "-o", f"{name}.json")

    validated = cli.ok("validate", f"{name}.json", "--api-url", "http://127.0.0.1:1")
    deployed = cli.ok("deploy", f"{name}.json", "--json").json()

    assert "valid" in validated.stdout
    assert deployed["workflow_id"] == STARTERS[name].workflow["workflow_id"]


def test_template_init_prints_json_and_refuses_to_overwrite(cli: Iwctl) -> None:
    printed = cli.ok("templates", "init", "schedule", "--workflow-id", "nightly")
    cli.ok("templates", "init", "schedule", "-o", "s.json")
    again = cli("templates", "init", "schedule", "-o", "s.json")
    forced = cli("templates", "init", "schedule", "-o", "s.json", "--force")
    unknown = cli("templates", "init", "nope")

    assert json.loads(printed.stdout)["workflow_id"] == "nightly"
    assert again.exit_code == 1 and "s.json exists" in again.stderr
    assert forced.exit_code == 0
    assert unknown.exit_code == 2


def test_validate_reports_invalid_json_with_its_position(iwctl: Iwctl, tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{"workflow_id": "x",\n  oops}')

    result = iwctl("validate", path)

    assert result.exit_code == 1
    assert "invalid JSON at line 2 column 3" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_lists_every_problem_with_its_path(iwctl: Iwctl, tmp_path: Path) -> None:
    path = write(tmp_path, "broken.json", INVALID)

    result = iwctl("validate", path)
    as_json = iwctl("validate", path, "--json")

    assert result.exit_code == 1
    assert "definition.steps[0].on_true:" in result.stdout
    assert "definition.steps[1].type:" in result.stdout
    assert as_json.exit_code == 1
    assert as_json.json()["valid"] is False
    assert "definition.steps[0].on_true" in as_json.json()["errors"]


def test_validate_reads_stdin_and_reports_a_missing_file(iwctl: Iwctl) -> None:
    workflow = json.dumps(STARTERS["hello"].workflow)

    assert iwctl("validate", "-", input=workflow).exit_code == 0
    missing = iwctl("validate", "missing.json")
    assert missing.exit_code == 1
    assert "cannot read missing.json" in missing.stderr


def test_deploy_creates_then_refuses_the_same_version_with_a_hint(
    cli: Iwctl, tmp_path: Path
) -> None:
    cli.ok("templates", "init", "hello", "-o", "hello.json")

    first = cli.ok("deploy", "hello.json", "--enable")
    second = cli("deploy", "hello.json")

    assert "deployed hello version 1.0.0" in first.stdout and "enabled" in first.stdout
    assert second.exit_code == 1
    assert "already deployed" in second.stderr
    assert "--new-version" in second.stderr


def test_deploy_new_version_bumps_past_the_highest_version(cli: Iwctl) -> None:
    cli.ok("templates", "init", "hello", "-o", "hello.json")
    cli.ok("deploy", "hello.json")

    bumped = cli.ok("deploy", "hello.json", "--new-version", "--json").json()
    again = cli.ok("deploy", "hello.json", "--new-version", "--json").json()

    assert bumped["version"] == "1.0.1"
    assert again["version"] == "1.0.2"


def test_deploy_shows_the_servers_validation_errors(cli: Iwctl, tmp_path: Path) -> None:
    result = cli("deploy", write(tmp_path, "broken.json", INVALID))

    assert result.exit_code == 1
    assert "(HTTP 422)" in result.stderr
    assert "definition.steps[0].on_true:" in result.stderr
    assert "Traceback" not in result.stderr


def test_deploy_of_a_file_that_is_not_json_fails_before_the_network(
    iwctl: Iwctl, tmp_path: Path, closed_port_url: str
) -> None:
    result = iwctl("deploy", write(tmp_path, "x.json", "[1, 2"), "--api-url", closed_port_url)

    assert result.exit_code == 1
    assert "invalid JSON" in result.stderr


def test_list_shows_the_newest_versions_as_a_table_or_json(cli: Iwctl) -> None:
    cli.ok("templates", "init", "hello", "-o", "hello.json")
    cli.ok("templates", "init", "schedule", "-o", "schedule.json")
    cli.ok("deploy", "hello.json")
    cli.ok("deploy", "hello.json", "--new-version")
    cli.ok("deploy", "schedule.json", "--enable")

    table = cli.ok("list").stdout
    every = cli.ok("list", "--all-versions", "--json").json()
    enabled = cli.ok("list", "--enabled", "--json").json()

    assert table.splitlines()[0].split() == [
        "ID",
        "WORKFLOW",
        "VERSION",
        "NAME",
        "ENABLED",
        "TRIGGER",
        "UPDATED",
    ]
    hello_rows = [line.split() for line in table.splitlines() if " hello " in line]
    assert [row[2] for row in hello_rows] == ["1.0.1"]
    assert "schedule 0 9 * * 1-5" in table
    assert sorted(w["version"] for w in every["workflows"]) == ["1.0.0", "1.0.0", "1.0.1"]
    assert [w["workflow_id"] for w in enabled["workflows"]] == ["daily-report"]


def test_show_finds_a_workflow_by_slug_row_id_or_version(cli: Iwctl) -> None:
    cli.ok("templates", "init", "approval", "-o", "a.json")
    first = cli.ok("deploy", "a.json", "--enable", "--json").json()
    cli.ok("deploy", "a.json", "--new-version")

    by_slug = cli.ok("show", "expense-approval")
    by_id = cli.ok("show", first["id"], "--json").json()
    by_version = cli.ok("show", "expense-approval", "--version", "1.0.1", "--json").json()
    unknown = cli("show", "no-such-workflow")
    no_version = cli("show", "expense-approval", "--version", "9")

    assert "version:     1.0.0" in by_slug.stdout  # the enabled one
    assert "ask_finance" in by_slug.stdout and "on_approve:approved" in by_slug.stdout
    assert by_id["id"] == first["id"]
    assert by_version["version"] == "1.0.1"
    assert unknown.exit_code == 1 and "no workflow 'no-such-workflow'" in unknown.stderr
    assert no_version.exit_code == 1 and "1.0.0" in no_version.stderr


def test_show_of_a_foreign_or_missing_row_id_is_not_found(cli: Iwctl) -> None:
    result = cli("show", "00000000-0000-4000-8000-000000000000")

    assert result.exit_code == 1
    assert "(HTTP 404)" in result.stderr


def test_enable_and_disable_switch_versions(cli: Iwctl) -> None:
    cli.ok("templates", "init", "hello", "-o", "hello.json")
    cli.ok("deploy", "hello.json", "--enable")
    cli.ok("deploy", "hello.json", "--new-version")

    enabled = cli.ok("enable", "hello")
    disabled = cli.ok("disable", "hello")

    assert "hello version 1.0.1 is enabled" in enabled.stdout
    assert "hello version 1.0.1 is disabled" in disabled.stdout
    versions = cli.ok("list", "--all-versions", "--json").json()["workflows"]
    assert not any(w["enabled"] for w in versions)
