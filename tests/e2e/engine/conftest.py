"""A real stack for the engine's end-to-end tests: gunicorn (2 workers), a Celery
worker (prefork, 2 processes) and beat, against the run's throwaway database, with
local HTTP and SMTP sinks standing in for the outside world.

The examples' `https://*.example.com` URLs are rewritten to the HTTP sink
(`https://fraud-api.example.com/check` -> `<sink>/fraud-api.example.com/check`);
`integrations.*.webhook_url` come from the event payloads.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tests.e2e.stack import ROOT, Stack
from tests.integration.engine.sinks import HttpSink, SmtpSink
from tests.support import redis_db_url

# Not the integration suite's broker DB (12): a worker of this stack would consume
# the messages those tests look for.
BROKER_URL = redis_db_url(6)
API = "/api/v1"
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples" / "original"
FINAL = {"completed", "failed", "cancelled"}
_EXAMPLE_HOST = re.compile(r"https://([a-z0-9.-]+\.example\.com)")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


class EngineStack(Stack):
    """The shared harness, closing each log file in this process once the child has it
    (an unclosed handle is a ResourceWarning, which this suite treats as an error)."""

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


# Package scope: the stack stops once this package's tests are done, so its
# processes do not run on beside (and consume for) the suites that follow.
@pytest.fixture(scope="package")
def engine_stack(
    engine_database_url: str,
    redis_url: str,
    http_sink: HttpSink,
    smtp_sink: SmtpSink,
    tmp_path_factory: Any,
) -> Iterator[Stack]:
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    stack = EngineStack(
        database_url=engine_database_url,
        redis_url=redis_url,
        broker_url=BROKER_URL,
        workdir=tmp_path_factory.mktemp("engine-stack"),
        extra_env={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_sink.port),
            "SLACK_WEBHOOK_URL": f"{http_sink.url}/slack",
            "OUTBOUND_TIMEOUT_SECONDS": "5",
            "JOB_INTERVAL_OUTBOX_RELAY": "1s",
            "JOB_INTERVAL_STUCK_SWEEPER": "3s",
            # Due-times moved into the past by test_waiting.py and test_cron.py fire
            # within a second.
            "JOB_INTERVAL_APPROVAL_EXPIRATION": "1s",
            "JOB_INTERVAL_WORKFLOW_RESUMER": "1s",
            "JOB_INTERVAL_SCHEDULER": "1s",
            "WORKFLOW_SECRET_FRAUD_API_TOKEN": "fraud-token-123",
            "LOG_LEVEL": "WARNING",
        },
    )
    try:
        stack.start_api()
        stack.start_worker()
        stack.start_beat()
        stack.wait_ready()
        stack.wait_worker()
        yield stack
    finally:
        stack.stop()
        broker.flushdb()
        broker.close()


@pytest.fixture(scope="session")
def db(engine_database_url: str) -> Iterator[Engine]:
    engine = create_engine(engine_database_url)
    yield engine
    engine.dispose()


class Api:
    """A registered user calling the running API over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url + API, timeout=15)
        self.token = ""
        self.organization_id = ""

    def register(self, username: str, password: str = "correct-horse-9") -> Api:
        body = {"username": username, "email": f"{username}@example.com", "password": password}
        assert self.http.post("/auth/register", json=body).status_code == 201
        login = self.http.post("/auth/login", json={"username": username, "password": password})
        assert login.status_code == 200, login.text
        self.token = login.json()["access_token"]
        self.organization_id = self.get("/auth/me").json()["organization_id"]
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, json: Any = None) -> httpx.Response:
        return self.http.post(path, json=json, headers=self.headers)

    def put(self, path: str, json: Any = None) -> httpx.Response:
        return self.http.put(path, json=json, headers=self.headers)

    def deploy(self, workflow: dict[str, Any]) -> dict[str, Any]:
        response = self.post("/workflows", {**workflow, "enabled": True})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def send(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.post("/events", {"event_type": event_type, "payload": payload})
        assert response.status_code == 202, response.text
        return dict(response.json())

    def execution(self, execution_id: str) -> dict[str, Any]:
        response = self.get(f"/executions/{execution_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def settle(
        self, execution_id: str, timeout: float = 30, states: set[str] | None = None
    ) -> dict[str, Any]:
        """Poll until the execution finished (or reached one of `states`)."""
        wanted = states or FINAL
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(f"/executions/{execution_id}")
            if response.status_code == 503 and time.monotonic() < deadline:
                # An outage the test caused (a dropped database): the API says retry.
                assert response.headers.get("Retry-After"), response.text
                time.sleep(0.2)
                continue
            assert response.status_code == 200, response.text
            body = dict(response.json())
            if body["status"] in wanted:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still {body['status']} after {timeout}s: {body}")
            time.sleep(0.1)

    def trace(self, execution_id: str) -> dict[str, Any]:
        response = self.get(f"/executions/{execution_id}/trace")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def path(self, execution_id: str) -> list[str]:
        steps = self.trace(execution_id)["steps"]
        return [s["step_id"] for s in steps if not s["branch_key"] and s["status"] == "completed"]


def load_example(name: str, sink_url: str) -> dict[str, Any]:
    """An example workflow as shipped, with its example.com URLs pointed at the sink."""
    text = (EXAMPLES_DIR / f"{name}.json").read_text()
    return dict(json.loads(_EXAMPLE_HOST.sub(lambda m: f"{sink_url}/{m.group(1)}", text)))


@pytest.fixture(scope="session")
def engine_database_url(database_url: str) -> Iterator[str]:
    """This suite's processes get a database of their own (see tests.conftest)."""
    from tests.conftest import dedicated_database

    with dedicated_database(database_url, "engine") as url:
        yield url
