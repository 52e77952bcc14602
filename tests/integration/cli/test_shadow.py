"""iwctl shadow: a candidate version replayed on events the real worker ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Iwctl

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "order-triage.json"


def test_shadow_prints_the_summary_and_each_difference_as_tables(
    cli: Iwctl, tmp_path: Path
) -> None:
    cli.ok("deploy", str(EXAMPLE), "--enable")
    sent = {
        total: cli.ok(
            "events",
            "send",
            "order.placed",
            "--payload",
            json.dumps({"order": {"id": f"o-{total}", "total": total}}),
            "--json",
        ).json()
        for total in (50, 700, 1500)
    }
    for accepted in sent.values():
        (execution,) = accepted["execution_ids"]
        cli.ok("logs", execution, "--follow", "--timeout", "30", "--interval", "0.2")
    (pending,) = cli.ok("approvals", "list", "--status", "pending", "--json").json()["approvals"]
    cli.ok("approvals", "approve", pending["id"], "--reason", "fine")
    last = cli.ok("logs", pending["execution_id"], "--follow", "--timeout", "30").stdout
    assert "result allowed" in last.splitlines()[-1]

    candidate = json.loads(EXAMPLE.read_text())
    candidate["version"] = "2.0.0"
    candidate["definition"]["steps"][0]["condition"]["value"] = 500
    (tmp_path / "v2.json").write_text(json.dumps(candidate))

    table = cli.ok("shadow", "order-triage", "--file", "v2.json", "--since", "1h").stdout
    as_json = cli.ok("shadow", "order-triage", "--file", "v2.json", "--since", "1h", "--json")

    lines = [" ".join(line.split()) for line in table.splitlines()]
    assert lines[0].endswith("order-triage 1.0.0 (recorded) vs candidate 2.0.0")
    for expected in (
        "events replayed 3",
        "same result 2",
        "different result 1",
        "unresolved 1",
        "allowed → waiting 1",
        "manager_review 1 0",
        "accept 0 1",
    ):
        assert expected in lines, (expected, table)
    (difference_line,) = [line for line in lines if line.startswith(sent[700]["id"])]
    assert difference_line.split()[1:5] == ["allowed", "waiting", "manager_review", "accept"]
    report = as_json.json()
    assert report["summary"]["by_change"] == [{"change": "allowed → waiting", "count": 1}]
    assert [d["event_id"] for d in report["differences"]] == [sent[700]["id"]]


def test_shadow_refuses_a_request_without_a_selection_or_with_a_bad_time(
    cli: Iwctl, tmp_path: Path
) -> None:
    cli.ok("deploy", str(EXAMPLE), "--enable")
    no_selection = cli("shadow", "order-triage", "--file", str(EXAMPLE))
    bad_since = cli("shadow", "order-triage", "--file", str(EXAMPLE), "--since", "last tuesday")
    assert no_selection.exit_code == 2
    assert bad_since.exit_code == 1
    assert "neither a duration" in bad_since.stderr
