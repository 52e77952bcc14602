"""Schemathesis over the whole OpenAPI, against a real gunicorn stack (issue 19).

Every phase runs (the schema's examples, coverage of each parameter's
boundaries, random fuzzing, and stateful sequences through the spec's links),
signed in as a registered user (schemathesis logs in through POST /auth/login
and again whenever an answer is a 401: fuzzing POST /auth/logout revokes the
token it was sent with). Two checks: no answer is a 5xx, and every answer
matches the response schema the spec declares for its status. The AI routes
talk to a local stand-in for the Anthropic API, so they answer like a
configured deployment instead of a 503.

The two live-stream routes (`/executions/stream`, `/executions/{id}/events`) are
left out: a server-sent-events answer does not end (heartbeats until the
execution finishes or the token expires), which a fuzzer's request cannot wait
for, and on a host without the stream service each one holds a sync worker.
Their inputs (cursors, filters, other organizations' ids) are tested in
tests/integration/engine/test_streams.py.

Bounded: at most EXAMPLES cases per operation and phase; about three minutes
on two cores. The numbers of the run are in the assertion message and in
`fuzz-summary.json` under the run's directory.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.ai.interpretation import EXAMPLE
from tests.e2e.stack import BIN, Stack
from tests.integration.ai.wire import ProviderServer, Recorded, Reply, anthropic_message
from tests.integration.ai.wire import anthropic_stream as streamed_reply
from tests.support import redis_db_url

pytestmark = pytest.mark.e2e

API = "/api/v1"
# The SSE routes (see the module docstring), as the schema names their paths.
STREAM_PATHS = r"/executions/(stream|\{[^/]+\}/events)$"
EXAMPLES = 10
SEED = 19
# Not a DB another suite owns (6, 9-13): rate-limit windows, caches and the broker's queue.
REDIS_URL = redis_db_url(7)
BROKER_URL = redis_db_url(8)
USER = {"username": "fuzzer", "email": "fuzzer@example.com", "password": "correct-horse-19"}


class AnthropicStandIn(ProviderServer):
    """Answers every request with a valid workflow: as one message, or streamed when
    the request asks for a stream."""

    def __init__(self) -> None:
        super().__init__()
        self._last = threading.local()

    def record(self, request: Recorded) -> None:
        self._last.stream = bool(isinstance(request.body, dict) and request.body.get("stream"))

    def next_reply(self) -> Reply:
        text = json.dumps(EXAMPLE)
        return (
            streamed_reply(text)
            if getattr(self._last, "stream", False)
            else anthropic_message(text)
        )


@pytest.fixture(scope="module")
def anthropic() -> Iterator[AnthropicStandIn]:
    server = AnthropicStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzz_stack(
    database_url: str, tmp_path_factory: Any, anthropic: AnthropicStandIn
) -> Iterator[Stack]:
    from tests.conftest import dedicated_database

    for url in (REDIS_URL, BROKER_URL):
        redis.Redis.from_url(url).flushdb()
    with dedicated_database(database_url, "fuzz") as url:
        stack = Stack(
            database_url=url,
            redis_url=REDIS_URL,
            broker_url=BROKER_URL,
            workdir=tmp_path_factory.mktemp("fuzz"),
            api_workers=2,
            extra_env={
                "LOG_LEVEL": "WARNING",
                # Fuzzing change-password sends wrong current passwords, which count as
                # failed sign-ins: the default limit would lock the fuzzer out.
                "FAILED_LOGIN_LIMIT": "1000000",
                "AI_PROVIDER": "anthropic",
                "AI_API_KEY": "test-key",
                "AI_BASE_URL": anthropic.url,
            },
        )
        try:
            stack.start_api()
            stack.wait_ready()
            yield stack
        finally:
            stack.stop()


def _seed(base: str) -> dict[str, list[str]]:
    """Register the fuzzer and create one of each resource, so that the operations on
    `/<resource>/{id}` reach their logic with real ids as well as with generated ones.
    The ids, by path parameter name."""
    client = httpx.Client(base_url=base + API, timeout=20)

    def made(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 300, (str(response.request.url), response.text)
        return dict(response.json()) if response.content else {}

    made(client.post("/auth/register", json=USER))
    login = {"username": USER["username"], "password": USER["password"]}
    token = made(client.post("/auth/login", json=login))["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    workflow = made(
        client.post(
            "/workflows",
            json={
                "workflow_id": "fuzz_seed",
                "version": "1",
                "name": "Seed",
                "enabled": True,
                "definition": {
                    "trigger": {"type": "event", "event": "fuzz.*"},
                    "steps": [{"id": "done", "type": "action", "action": {"type": "allow"}}],
                },
            },
        )
    )
    execution = made(client.post(f"/workflows/{workflow['id']}/execute", json={"payload": {}}))
    rule = made(
        client.post(
            "/rules",
            json={
                "rule_id": "fuzz_rule",
                "name": "Seed rule",
                "conditions": [{"field": "x", "operator": "eq", "value": 1}],
            },
        )
    )
    schedule = made(client.post(f"/workflows/{workflow['id']}/schedules", json={"cron": "@hourly"}))
    event = made(client.post("/events", json={"event_type": "fuzz.seeded", "payload": {"x": 1}}))
    key = made(client.post("/auth/api-keys", json={"name": "fuzz"}))
    organization = made(client.post("/organizations", json={"name": "Fuzz two"}))
    audit = made(client.get("/audit-logs"))["audit_logs"]
    me = made(client.get("/auth/me"))
    client.close()
    return {
        "workflow_row_id": [workflow["id"]],
        "execution_id": [execution["id"], *event["execution_ids"]],
        "rule_row_id": [rule["id"]],
        "schedule_id": [schedule["id"]],
        "event_id": [event["id"]],
        "key_id": [key["id"]],
        # Not the personal organization: deleting it would end the fuzzer's session for good.
        "organization_id": [organization["id"]],
        "user_id": [me["user_id"]],
        "entry_id": [entry["id"] for entry in audit[:3]],
    }


def _config(workdir: Path, ids: dict[str, list[str]]) -> Path:
    """Sign in through POST /auth/login; path parameters take a seeded id half the time."""
    login = {"username": USER["username"], "password": USER["password"]}
    payload = ", ".join(f'{key} = "{value}"' for key, value in login.items())
    lines = [
        "[auth.dynamic.openapi.bearerAuth]",
        f'path = "{API}/auth/login"',
        f"payload = {{ {payload} }}",
        'extract_selector = "/access_token"',
        "",
        "[parameters]",
        *(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in ids),
        "",
    ]
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    config = workdir / "schemathesis.toml"
    config.write_text("\n".join(lines))
    return config


def run_schemathesis(stack: Stack) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    ids = _seed(stack.api_url)
    reports = stack.workdir / "schemathesis"
    command = [
        str(BIN / "st"),
        "--config-file",
        str(_config(stack.workdir, ids)),
        "run",
        f"{stack.api_url}{API}/openapi.json",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--exclude-path-regex",
        STREAM_PATHS,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "json",
        "--report-dir",
        str(reports),
        "--output-truncate",
        "true",
    ]
    completed = subprocess.run(
        command, cwd=stack.workdir, capture_output=True, text=True, timeout=900, check=False
    )
    (report,) = reports.glob("*.json")
    return completed, json.loads(report.read_text())


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_stack: Stack) -> None:
    completed, report = run_schemathesis(fuzz_stack)

    summary = {
        "operations": report["operations"],
        "phases": {name: phase["status"] for name, phase in report["phases"].items()},
        "test_cases": report["test_cases"],
        "auth": report["auth"],
        "running_time": report["running_time"],
    }
    (fuzz_stack.workdir / "fuzz-summary.json").write_text(json.dumps(summary, indent=2))
    output = completed.stdout[-12000:]
    assert completed.returncode == 0, f"{json.dumps(summary)}\n{output}"
    assert report["test_cases"]["with_failures"] == 0, output
    operations = report["operations"]
    assert operations["tested"] == operations["selected"], summary
    assert operations["selected"] == operations["total"] - 2, summary  # all but the SSE routes
    assert not report["auth"]["reauth_broke"], summary


@pytest.mark.parametrize("size", [9_000, 30_000])
def test_an_over_long_authorization_header_gets_the_json_431_through_gunicorn(
    fuzz_stack: Stack, size: int
) -> None:
    response = httpx.get(
        f"{fuzz_stack.api_url}{API}/auth/me",
        headers={"Authorization": "Bearer " + "a" * size},
        timeout=10,
    )

    assert response.status_code == 431
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == 431
