"""`iwctl logs --follow` reads the live stream (through the API's 307 to the stream
service), and polls the trace when a server has no stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.integration.cli.conftest import Iwctl

pytestmark = pytest.mark.integration

EXECUTION_ID = "0b5e0c1e-4a5b-4c56-9d1e-2f1f0c6f3a11"


def test_logs_follow_reads_the_stream_service(cli: Iwctl, stack: Stack) -> None:
    cli.ok("templates", "init", "hello", "-o", "hello.json")
    cli.ok("deploy", "hello.json", "--enable")
    started = cli.ok("run", "hello", "--json").json()

    followed = cli.ok("logs", started["id"], "--follow", "--timeout", "30")

    assert "greet (execute) completed" in followed.stdout
    assert "completed" in followed.stdout.splitlines()[-1]
    assert "polling" not in followed.stderr
    route = 'path="/api/v1/executions/<uuid:execution_id>/events"'
    redirected = _requests(stack.api_url, route, "307")
    served = _requests(stack.stream_url, route, "200")
    assert redirected >= 1 and served >= 1


def _requests(url: str, route: str, status: str) -> float:
    """http_requests_total of one route and status, from a host's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_requests_total{")
        and route in line
        and f'status="{status}"' in line
    )


class _NoStreamApi(BaseHTTPRequestHandler):
    """An API without the stream routes (an older server): 404 there, a finished trace."""

    def do_GET(self) -> None:
        if self.path.endswith("/events"):
            self._json(404, {"code": 404, "status": "Not Found", "message": "Not Found"})
        elif self.path.endswith("/trace"):
            step = {
                "id": "s1",
                "step_id": "greet",
                "step_type": "execute",
                "status": "completed",
                "attempt": 1,
                "completed_at": "2026-12-06T10:00:00+00:00",
            }
            execution = {"id": EXECUTION_ID, "status": "completed", "result": "executed"}
            self._json(200, {"execution": execution, "steps": [step]})
        else:
            self._json(404, {"code": 404, "status": "Not Found", "message": "Not Found"})

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def no_stream_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoStreamApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_logs_follow_polls_a_server_without_the_stream(iwctl: Iwctl, no_stream_api: str) -> None:
    result = iwctl(
        "logs",
        EXECUTION_ID,
        "--follow",
        "--timeout",
        "10",
        env={"IWCTL_API_URL": no_stream_api, "IWCTL_API_KEY": "iw_test_key"},
    )

    assert result.exit_code == 0, result
    assert "live stream unavailable (Not Found): polling" in result.stderr
    assert "greet (execute) completed" in result.stdout
