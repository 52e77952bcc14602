"""run, logs, executions, events and approvals: executions on a real worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Account, Iwctl

pytestmark = pytest.mark.integration

FAILING = {
    "workflow_id": "always-fails",
    "version": "1",
    "name": "Always fails",
    "definition": {
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "call",
                "type": "execute",
                "execute": [{"type": "webhook", "url": "http://127.0.0.1:9/nothing"}],
                "retry": {"max_attempts": 2, "backoff": "fixed", "initial_interval": "100ms"},
            }
        ],
    },
}


def deploy_template(cli: Iwctl, name: str) -> None:
    cli.ok("templates", "init", name, "-o", f"{name}.json")
    cli.ok("deploy", f"{name}.json", "--enable")


def test_run_follow_prints_the_steps_until_the_execution_completes(cli: Iwctl) -> None:
    deploy_template(cli, "hello")

    result = cli.ok("run", "hello", "--payload", '{"name": "Ada"}', "--follow")

    lines = result.stdout.splitlines()
    assert lines[0].startswith("started execution ")
    assert any("greet (execute) completed, attempt 1" in line for line in lines)
    assert "completed, result executed" in lines[-1]


def test_run_reads_the_payload_from_a_file_and_logs_follows_it(cli: Iwctl, tmp_path: Path) -> None:
    deploy_template(cli, "hello")
    (tmp_path / "payload.json").write_text('{"name": "Grace"}')

    started = cli.ok("run", "hello", "--payload", "@payload.json", "--json").json()
    followed = cli.ok("logs", started["id"], "--follow", "--interval", "0.2", "--timeout", "30")
    shown = cli.ok("executions", "show", started["id"], "--json").json()

    assert started["status"] in {"pending", "running", "completed"}
    assert "greet (execute) completed" in followed.stdout
    assert shown["context"]["greeting"] == "Hello, Grace!"


def test_logs_json_prints_one_object_per_line(cli: Iwctl) -> None:
    deploy_template(cli, "hello")
    started = cli.ok("run", "hello", "--json").json()

    result = cli.ok("logs", started["id"], "--follow", "--json", "--timeout", "30")

    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["type"] == "step" and records[0]["step_id"] == "greet"
    assert records[-1]["type"] == "execution" and records[-1]["status"] == "completed"


def test_bad_payloads_are_refused_before_anything_runs(cli: Iwctl) -> None:
    deploy_template(cli, "hello")

    not_json = cli("run", "hello", "--payload", "{nope")
    not_object = cli("run", "hello", "--payload", "[1, 2]")
    no_file = cli("run", "hello", "--payload", "@missing.json")

    assert not_json.exit_code == 1 and "--payload: invalid JSON" in not_json.stderr
    assert not_object.exit_code == 1 and "expected a JSON object" in not_object.stderr
    assert no_file.exit_code == 1 and "cannot read missing.json" in no_file.stderr
    assert "no executions" in cli.ok("executions", "list").stdout


def test_running_a_disabled_workflow_is_refused(cli: Iwctl) -> None:
    cli.ok("templates", "init", "hello", "-o", "hello.json")
    cli.ok("deploy", "hello.json")

    result = cli("run", "hello")

    assert result.exit_code == 1
    assert "(HTTP 409)" in result.stderr


def test_executions_list_filters_and_trace_shows_each_attempt(cli: Iwctl, tmp_path: Path) -> None:
    deploy_template(cli, "hello")
    (tmp_path / "fails.json").write_text(json.dumps(FAILING))
    cli.ok("deploy", "fails.json", "--enable")
    ok = cli.ok("run", "hello", "--json").json()
    failed = cli.ok("run", "always-fails", "--json").json()
    cli.ok("logs", ok["id"], "--follow", "--timeout", "30")
    end = cli.ok("logs", failed["id"], "--follow", "--timeout", "40")

    everything = cli.ok("executions", "list")
    only_failed = cli.ok("executions", "list", "--status", "failed", "--json").json()
    only_hello = cli.ok("executions", "list", "--workflow", "hello", "--json").json()
    trace = cli.ok("executions", "trace", failed["id"])
    trace_json = cli.ok("executions", "trace", failed["id"], "--json").json()
    shown = cli.ok("executions", "show", failed["id"])

    assert "failed" in end.stdout.splitlines()[-1]
    assert ok["id"] in everything.stdout and failed["id"] in everything.stdout
    assert [e["id"] for e in only_failed["executions"]] == [failed["id"]]
    assert [e["id"] for e in only_hello["executions"]] == [ok["id"]]
    header = trace.stdout.splitlines()
    assert any(
        line.split()[:7] == ["STEP", "TYPE", "STATUS", "ATTEMPT", "STARTED", "DURATION", "ERROR"]
        for line in header
    )
    attempts = [s["attempt"] for s in trace_json["steps"] if s["step_id"] == "call"]
    assert attempts == [1, 2]
    assert all(s["status"] == "failed" for s in trace_json["steps"])
    assert "status:       failed" in shown.stdout
    assert "error:" in shown.stdout


def test_executions_with_a_malformed_or_unknown_id_fail_clearly(cli: Iwctl) -> None:
    malformed = cli("executions", "show", "12")
    unknown = cli("executions", "trace", "00000000-0000-4000-8000-000000000000")
    usage = cli("executions", "list", "--status", "sleeping")

    assert malformed.exit_code == 1 and "not an execution id" in malformed.stderr
    assert unknown.exit_code == 1 and "(HTTP 404)" in unknown.stderr
    assert usage.exit_code == 2


def test_events_send_starts_matching_workflows_once_per_idempotency_key(cli: Iwctl) -> None:
    cli.ok("templates", "init", "event-notify", "-o", "n.json")
    cli.ok("deploy", "n.json", "--enable")
    payload = '{"order": {"id": "o-1", "total": 10}}'

    first = cli.ok(
        "events", "send", "order.created", "--payload", payload, "--idempotency-key", "k-1"
    )
    again = cli.ok(
        "events",
        "send",
        "order.created",
        "--payload",
        payload,
        "--idempotency-key",
        "k-1",
        "--json",
    ).json()
    unmatched = cli.ok("events", "send", "nobody.listens")

    assert "accepted (order.created)" in first.stdout
    assert "started execution" in first.stdout and "of order-notify" in first.stdout
    assert again["id"] in first.stdout
    assert len(again["execution_ids"]) == 1
    assert "nothing started" in unmatched.stdout
    end = cli.ok("logs", again["execution_ids"][0], "--follow", "--timeout", "30")
    assert "log_small (execute) completed" in end.stdout


def test_events_send_validates_its_payload(cli: Iwctl) -> None:
    result = cli("events", "send", "x.y", "--payload", "42")

    assert result.exit_code == 1
    assert "expected a JSON object" in result.stderr


def test_events_send_file_sends_an_ndjson_file_in_batches(cli: Iwctl, tmp_path: Path) -> None:
    cli.ok("templates", "init", "event-notify", "-o", "n.json")
    cli.ok("deploy", "n.json", "--enable")
    lines = [
        json.dumps({"event_type": "order.created", "payload": {"order": {"id": f"o-{i}"}}})
        for i in range(230)
    ]
    lines[10] = json.dumps({"payload": {"no": "type"}})
    lines[20] = json.dumps({"event_type": "order.created", "idempotency_key": "file-k"})
    lines[150] = json.dumps({"event_type": "order.created", "idempotency_key": "file-k"})
    lines.insert(40, "")  # blank lines are skipped
    (tmp_path / "events.ndjson").write_text("\n".join(lines) + "\n")

    # The stack's default limit is 100 events a second: later batches are rate limited
    # at first and sent again after the Retry-After.
    result = cli("events", "send", "--file", "events.ndjson")

    assert result.exit_code == 1, result
    assert "Traceback" not in result.stderr
    assert "sending events" in result.stderr
    assert "line 11: rejected (422)" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "230 events: 229 accepted (1 repeated keys), 1 rejected; 228 executions started"
    )

    again = cli("events", "send", "--file", "events.ndjson", "--batch-size", "500", "--json")
    answers = again.json()
    assert again.exit_code == 1
    assert [a["line"] for a in answers][:12] == [*range(1, 11), 11, 12]
    assert [a["status"] for a in answers].count(202) == 229
    assert answers[20]["repeated"] is True  # file-k, stored by the first send


def test_events_send_file_refuses_a_malformed_file_before_sending(
    cli: Iwctl, account: Account, tmp_path: Path
) -> None:
    (tmp_path / "bad.ndjson").write_text('{"event_type": "a.b"}\n[1]\n')
    (tmp_path / "broken.ndjson").write_text('{"event_type": "a.b"}\n{"event_type": \n')

    not_object = cli("events", "send", "--file", "bad.ndjson")
    broken = cli("events", "send", "--file", "broken.ndjson")
    both = cli("events", "send", "a.b", "--file", "bad.ndjson")

    assert not_object.exit_code == 1 and "line 2: expected a JSON object" in not_object.stderr
    assert broken.exit_code == 1 and "line 2: invalid JSON" in broken.stderr
    assert both.exit_code == 2
    assert account.call("GET", "/events").json()["events"] == []


def test_approvals_are_listed_and_decided(cli: Iwctl, endpoints: set[str]) -> None:
    assert "GET /approvals" in endpoints
    deploy_template(cli, "approval")
    payloads = [{"expense": {"id": f"e-{n}", "amount": 900}} for n in (1, 2)]
    started = [
        cli.ok("events", "send", "expense.submitted", "--payload", json.dumps(p), "--json").json()
        for p in payloads
    ]
    executions = [s["execution_ids"][0] for s in started]
    for execution in executions:
        waiting = cli.ok("logs", execution, "--follow", "--timeout", "5", "--interval", "0.2")
        assert "waiting" in waiting.stdout or "completed" not in waiting.stdout

    pending = cli.ok("approvals", "list", "--status", "pending", "--json").json()["approvals"]
    by_execution = {a["execution_id"]: a["id"] for a in pending}
    table = cli.ok("approvals", "list", "--mine")
    approved = cli.ok("approvals", "approve", by_execution[executions[0]], "--reason", "fine")
    no_reason = cli("approvals", "reject", by_execution[executions[1]])
    rejected = cli.ok("approvals", "reject", by_execution[executions[1]], "--reason", "too much")

    assert set(by_execution) == set(executions)
    assert "finance" in table.stdout
    assert "approved" in approved.stdout
    assert no_reason.exit_code == 2
    assert "rejected" in rejected.stdout
    first = cli.ok("logs", executions[0], "--follow", "--timeout", "30").stdout
    second = cli.ok("logs", executions[1], "--follow", "--timeout", "30").stdout
    assert "result allowed" in first.splitlines()[-1]
    assert "result blocked" in second.splitlines()[-1]
