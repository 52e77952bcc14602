"""The metrics contract, proven against the stack users run: `make up`'s scripts/stack.sh.

The platform comes up through scripts/stack.sh on free ports, with its own
directory and env file and a throwaway database: gunicorn, the Celery worker,
beat, Flower (with its generated login), the node, Postgres and Redis exporters,
Prometheus and Alertmanager. Real traffic goes through the API (events,
executions that succeed and fail, approvals decided, a notification, an AI call
answered 503 because AI is not configured); then every target must be up and
every catalogue metric, alert expression and dashboard query is asked of
Prometheus, and counts are compared with the truth in Postgres and with what
the test sent. `stack.sh down` must leave nothing running.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text

from monitoring.assets import alert_expressions, dashboard_expressions, inner_query
from monitoring.metrics import CATALOGUE
from tests.e2e.stack import ROOT, free_port, wait_until
from tests.integration.engine.sinks import HttpSink, SmtpSink
from tests.support import redis_db_url

pytestmark = pytest.mark.e2e

BROKER_URL = redis_db_url(11)
API = "/api/v1"
SCRAPE_INTERVAL = "1s"
EXPORTERS = ("node-exporter", "postgres-exporter", "redis-exporter")
EXPECTED_JOBS = {
    "workflows-api",
    "workflows-worker",
    "flower",
    "alertmanager",
    "prometheus",
    *EXPORTERS,
}
REQUIRED_BINARIES = (
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-node-exporter",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
)
# The stack's ports, each a free one here (scripts/stack.sh reads them from the environment).
PORT_VARIABLES = (
    "API_PORT",
    "WORKER_METRICS_PORT",
    "FLOWER_PORT",
    "PROMETHEUS_PORT",
    "ALERTMANAGER_PORT",
    "NODE_EXPORTER_PORT",
    "POSTGRES_EXPORTER_PORT",
    "REDIS_EXPORTER_PORT",
)
# Never inherited from the caller: the stack must be the one `make up` gives a new user.
CLEARED_VARIABLES = ("PROMETHEUS_MULTIPROC", "AI_", "FLOWER_", "DATABASE_URL", "REDIS_URL")
# Dashboards use Grafana's interval variables; a fixed window answers the same question here.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


@dataclass
class Traffic:
    """What the test did, to compare with what the metrics say."""

    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    execution_ids: list[str] = field(default_factory=list)


class CountingApi:
    def __init__(self, base_url: str, traffic: Traffic) -> None:
        self.http = httpx.Client(base_url=base_url + API, timeout=20)
        self.traffic = traffic
        self.token = ""

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.token:
            kwargs.setdefault("headers", {})["Authorization"] = f"Bearer {self.token}"
        response = self.http.request(method, path, **kwargs)
        self.traffic.sent += 1
        self.traffic.by_status[response.status_code] = (
            self.traffic.by_status.get(response.status_code, 0) + 1
        )
        return response

    def register_and_login(self, username: str, password: str = "correct-horse-9") -> None:
        body = {"username": username, "email": f"{username}@example.com", "password": password}
        assert self.request("POST", "/auth/register", json=body).status_code == 201
        login = self.request(
            "POST", "/auth/login", json={"username": username, "password": password}
        )
        assert login.status_code == 200, login.text
        self.token = login.json()["access_token"]


class Prometheus:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/query", params={"query": expr})
        body = response.json()
        assert body.get("status") == "success", (expr, body)
        return list(body["data"]["result"])

    def targets(self) -> dict[str, str]:
        body = self.http.get("/api/v1/targets").json()
        return {t["labels"]["job"]: t["health"] for t in body["data"]["activeTargets"]}


def _workflow(workflow_id: str, steps: list[dict[str, Any]], event: str) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "version": "1",
        "name": workflow_id.replace("_", " "),
        "enabled": True,
        "definition": {"trigger": {"type": "event", "event": event}, "steps": steps},
    }


def _drive_traffic(api: CountingApi, sink: HttpSink, smtp_port: int) -> None:
    api.register_and_login("metrics" + secrets.token_hex(3))
    # Failed logins (bad password, then throttled), a forged token, a 404, a 422.
    victim = "victim" + secrets.token_hex(3)
    api.request(
        "POST",
        "/auth/register",
        json={"username": victim, "email": f"{victim}@example.com", "password": "right-password-1"},
    )
    saved, api.token = api.token, ""
    for _ in range(6):
        api.request("POST", "/auth/login", json={"username": victim, "password": "wrong-password"})
    api.token = "not.a.jwt"
    assert api.request("GET", "/workflows").status_code == 401
    api.token = saved
    assert api.request("GET", "/workflows/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.request("POST", "/workflows", json={"workflow_id": ""}).status_code == 422

    succeeds = _workflow(
        "metrics_success",
        [
            {
                "id": "check",
                "type": "condition",
                "condition": {"field": "amount", "operator": "gt", "value": 10},
                "on_true": "notify",
                "on_false": "deny",
            },
            {
                "id": "notify",
                "type": "action",
                "action": {"type": "allow"},
                "execute": [
                    {
                        "type": "notify",
                        "recipients": ["ops@example.com"],
                        "message": "amount {{ amount }}",
                    }
                ],
            },
            {"id": "deny", "type": "action", "action": {"type": "block", "reason": "small"}},
        ],
        "metrics.order",
    )
    fails = _workflow(
        "metrics_failure",
        [
            {
                "id": "call",
                "type": "execute",
                "execute": [{"type": "http_request", "url": f"{sink.url}/fails", "method": "POST"}],
                "retry": {
                    "max_attempts": 2,
                    "backoff": "fixed",
                    "initial_interval": "100ms",
                    "retry_on": ["5xx"],
                },
            },
        ],
        "metrics.fail",
    )
    sink.respond("/fails", status=503, body={"error": "down"})
    approval = _workflow(
        "metrics_approval",
        [
            {
                "id": "ask",
                "type": "action",
                "action": {"type": "require_approval", "reason": "check it"},
                "metadata": {"approver_role": "finance"},
            },
        ],
        "metrics.approve",
    )
    for workflow in (succeeds, fails, approval):
        response = api.request("POST", "/workflows", json=workflow)
        assert response.status_code == 201, response.text
        api.request("GET", "/workflows", params={"search": workflow["workflow_id"]})
    events = [
        ("metrics.order", {"amount": 50}),
        ("metrics.order", {"amount": 5}),
        ("metrics.order", {"amount": 99}),
        ("metrics.fail", {}),
        ("metrics.approve", {}),
        ("metrics.approve", {}),
    ]
    for event_type, payload in events:
        response = api.request(
            "POST", "/events", json={"event_type": event_type, "payload": payload}
        )
        assert response.status_code == 202, response.text
        api.traffic.execution_ids.extend(response.json()["execution_ids"])


def _settled(api: CountingApi) -> bool:
    statuses = []
    for execution_id in api.traffic.execution_ids:
        statuses.append(api.request("GET", f"/executions/{execution_id}").json()["status"])
    return all(s in {"completed", "failed", "waiting"} for s in statuses)


def _decide_approvals(api: CountingApi) -> None:
    pending = api.request("GET", "/approvals", params={"status": "pending"}).json()["approvals"]
    assert len(pending) == 2
    approved = api.request("POST", f"/approvals/{pending[0]['id']}/approve", json={"reason": "ok"})
    assert approved.status_code == 200, approved.text
    rejected = api.request("POST", f"/approvals/{pending[1]['id']}/reject", json={"reason": "no"})
    assert rejected.status_code == 200, rejected.text


@dataclass
class UpStack:
    """The platform as `make up` runs it: scripts/stack.sh with ports and directories moved."""

    workdir: Path
    env: dict[str, str]

    @classmethod
    def for_test(cls, workdir: Path, database_url: str, redis_url: str, smtp_port: int) -> UpStack:
        ports = {name: str(free_port()) for name in PORT_VARIABLES}
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(CLEARED_VARIABLES)
        }
        env.update(ports)
        env.update(
            {
                "IW_VAR_DIR": str(workdir / "var"),
                "IW_ENV_FILE": str(workdir / "dotenv"),
                "APP_ENV": "test",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "CELERY_BROKER_URL": BROKER_URL,
                "JWT_SECRET": "e2e-secret-" + secrets.token_hex(8),
                "PUBLIC_URL": f"http://127.0.0.1:{ports['API_PORT']}",
                "RATE_LIMIT_AUTH": "100000/minute",
                "RATE_LIMIT_DEFAULT": "100000/second",
                "OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp_port),
                "JOB_INTERVAL_OUTBOX_RELAY": "1s",
                "LOG_LEVEL": "WARNING",
                "PROMETHEUS_SCRAPE_INTERVAL": SCRAPE_INTERVAL,
            }
        )
        return cls(workdir, env)

    def url(self, port_variable: str) -> str:
        return f"http://127.0.0.1:{self.env[port_variable]}"

    def run(self, command: str, timeout: float = 240) -> str:
        result = subprocess.run(
            [str(ROOT / "scripts" / "stack.sh"), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"stack.sh {command}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def pids(self) -> dict[str, int]:
        run = self.workdir / "var" / "run"
        return {path.stem: int(path.read_text()) for path in run.glob("*.pid")}

    def flower_login(self) -> tuple[str, str]:
        for line in (self.workdir / "dotenv").read_text().splitlines():
            if line.startswith("FLOWER_BASIC_AUTH="):
                user, _, password = line.removeprefix("FLOWER_BASIC_AUTH=").partition(":")
                return user, password
        raise AssertionError("make up wrote no FLOWER_BASIC_AUTH")


@pytest.fixture(scope="module")
def observed(database_url: str, redis_url: str, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    from models.migration import drop_database

    for binary in REQUIRED_BINARIES:
        assert shutil.which(binary), f"{binary} is not installed (make test installs it)"
    db_url = database_url + "_metrics"
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    workdir: Path = tmp_path_factory.mktemp("metrics-stack")
    sink, smtp = HttpSink().start(), SmtpSink().start()
    stack = UpStack.for_test(workdir, db_url, redis_url, smtp.port)
    clients: list[httpx.Client] = []
    try:
        up_output = stack.run("up")
        wait_until(
            lambda: httpx.get(stack.url("WORKER_METRICS_PORT") + "/metrics").status_code == 200,
            60,
            what="the worker's metrics port",
        )
        prometheus = Prometheus(stack.url("PROMETHEUS_PORT"))
        clients.append(prometheus.http)
        wait_until(
            lambda: prometheus.http.get("/-/ready").status_code == 200, 60, what="prometheus"
        )
        traffic = Traffic()
        api = CountingApi(stack.url("API_PORT"), traffic)
        clients.append(api.http)
        _drive_traffic(api, sink, smtp.port)
        # AI is not configured in the stack users get: the call is answered 503 and counted.
        chat = api.request(
            "POST", "/ai/chat", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.status_code == 503, chat.text
        wait_until(lambda: _settled(api), 90, interval=0.5, what="executions to settle")
        _decide_approvals(api)
        wait_until(lambda: _settled(api), 60, interval=0.5, what="approved executions")
        db = create_engine(db_url)
        with db.connect() as connection:
            finished = connection.execute(
                text(
                    "SELECT count(*) FROM executions"
                    " WHERE status IN ('completed', 'failed', 'cancelled')"
                )
            ).scalar_one()
        db.dispose()
        expected_requests = traffic.sent

        def caught_up() -> bool:
            executions = prometheus.query("sum(workflow_executions_total)")
            requests = prometheus.query('sum(http_requests_total{path!~"/metrics|/ready"})')
            return bool(executions and requests) and (
                float(executions[0]["value"][1]) == finished
                and float(requests[0]["value"][1]) == expected_requests
            )

        # Let a few scrapes and rule evaluations happen, then wait for the counts to agree.
        time.sleep(5)
        wait_until(caught_up, 60, interval=1, what="prometheus to see every request and execution")
        yield {
            "prometheus": prometheus,
            "traffic": traffic,
            "finished": finished,
            "stack": stack,
            "up_output": up_output,
        }
    finally:
        for client in clients:
            client.close()
        stack.run("down")
        sink.stop()
        smtp.stop()
        broker.flushdb()
        broker.close()
        drop_database(db_url)


def test_every_target_prometheus_scrapes_is_up(observed: dict[str, Any]) -> None:
    targets = observed["prometheus"].targets()
    assert targets == dict.fromkeys(EXPECTED_JOBS, "up")


def test_the_exporters_reach_postgres_and_redis(observed: dict[str, Any]) -> None:
    prometheus = observed["prometheus"]
    assert [r["value"][1] for r in prometheus.query("pg_up")] == ["1"]
    assert [r["value"][1] for r in prometheus.query("redis_up")] == ["1"]


def test_known_label_sets_read_zero_rather_than_nothing(observed: dict[str, Any]) -> None:
    prometheus = observed["prometheus"]

    def values(expr: str) -> list[str]:
        return [r["value"][1] for r in prometheus.query(expr)]

    never_failed = 'workflow_id="metrics_success",status="failed",trigger_type="event"'
    for job in ("workflows-api", "workflows-worker"):
        assert values(f'workflow_executions_total{{job="{job}",{never_failed}}}') == ["0"], job
    assert values(f"sum(increase(workflow_executions_total{{{never_failed}}}[1m]))") == ["0"]
    assert values('ai_requests_total{model="none",status="unavailable"}') == ["1"]
    assert values('ai_requests_total{model="none",status="success"}') == ["0"]
    assert values('notifications_sent_total{type="slack",status="failed"}') == ["0"]
    assert values('approvals_total{workflow_id="metrics_approval",status="expired"}') == [
        "0",
        "0",
    ]


def test_flower_ui_and_api_ask_for_the_generated_login(observed: dict[str, Any]) -> None:
    stack: UpStack = observed["stack"]
    flower = stack.url("FLOWER_PORT")
    login = stack.flower_login()
    assert "Flower login generated" in observed["up_output"]
    for path in ("/", "/api/workers", "/api/tasks"):
        assert httpx.get(flower + path, timeout=10).status_code == 401, path
        assert httpx.get(flower + path, auth=login, timeout=10).status_code == 200, path
    assert httpx.get(flower + path, auth=(login[0], "wrong"), timeout=10).status_code == 401


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_catalogue_metric_exists_with_its_labels(observed: dict[str, Any], name: str) -> None:
    spec = CATALOGUE[name]
    # Counters are catalogued with their _total name; a histogram is seen by its _count.
    series_name = f"{name}_count" if spec.kind == "histogram" else name
    result = observed["prometheus"].query(series_name)
    assert result, f"no series for {series_name}"
    for series in result:
        missing = set(spec.labels) - set(series["metric"])
        assert not missing, (series_name, missing, series["metric"])


def _prepared(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@pytest.mark.parametrize(("alert", "expr"), alert_expressions())
def test_every_alert_expression_returns_data(
    observed: dict[str, Any], alert: str, expr: str
) -> None:
    inner = inner_query(expr)
    assert observed["prometheus"].query(_prepared(inner)), f"{alert}: {inner} returned nothing"


@pytest.mark.parametrize(("dashboard", "panel", "expr"), dashboard_expressions())
def test_every_dashboard_query_returns_data(
    observed: dict[str, Any], dashboard: str, panel: str, expr: str
) -> None:
    result = observed["prometheus"].query(_prepared(expr))
    assert result, f"{dashboard} / {panel}: {expr} returned nothing"


def test_execution_counter_equals_finished_executions_in_the_database(
    observed: dict[str, Any],
) -> None:
    total = observed["prometheus"].query("sum(workflow_executions_total)")
    assert float(total[0]["value"][1]) == observed["finished"]
    assert observed["finished"] == len(observed["traffic"].execution_ids)


def test_request_counter_equals_requests_sent_by_status(observed: dict[str, Any]) -> None:
    result = observed["prometheus"].query(
        'sum by (status) (http_requests_total{path!~"/metrics|/ready"})'
    )
    seen = {int(r["metric"]["status"]): float(r["value"][1]) for r in result}
    expected = {status: float(n) for status, n in observed["traffic"].by_status.items()}
    assert {k: v for k, v in seen.items() if v} == expected


def test_paths_are_route_templates_never_ids(observed: dict[str, Any]) -> None:
    result = observed["prometheus"].query("count by (path) (http_requests_total)")
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
    for series in result:
        assert not uuid.search(series["metric"]["path"]), series["metric"]["path"]


def test_alert_rules_are_loaded_by_prometheus(observed: dict[str, Any]) -> None:
    body = observed["prometheus"].http.get("/api/v1/rules").json()
    loaded = {rule["name"] for group in body["data"]["groups"] for rule in group["rules"]}
    assert {name for name, _ in alert_expressions()} <= loaded


def test_make_down_leaves_nothing_running(observed: dict[str, Any]) -> None:
    """Last in this module: it stops the stack (the fixture's own `down` then finds nothing)."""
    stack: UpStack = observed["stack"]
    pids = stack.pids()
    assert set(pids) >= {"api", "worker", "beat", "flower", "prometheus", *EXPORTERS}
    stack.run("down")
    alive = {name: pid for name, pid in pids.items() if _alive(pid)}
    assert not alive
    assert not list((stack.workdir / "var" / "run").glob("*.pid"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"
