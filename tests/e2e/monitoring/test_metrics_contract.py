"""The metrics contract, proven against a real Prometheus scraping a real stack.

gunicorn (2 workers), a Celery worker (2 processes), beat, node-exporter and
Prometheus run as processes; real traffic goes through the API; then every
catalogue metric, every alert expression and every dashboard query is asked of
Prometheus, and counts are compared with the truth in Postgres and with what
the test sent.
"""

from __future__ import annotations

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

from monitoring.assets import (
    alert_expressions,
    dashboard_expressions,
    inner_query,
    render_local_config,
)
from monitoring.metrics import CATALOGUE
from tests.e2e.stack import ROOT, Stack, free_port, wait_until
from tests.integration.ai.wire import ProviderServer, anthropic_message
from tests.integration.engine.sinks import HttpSink, SmtpSink
from tests.support import redis_db_url

pytestmark = pytest.mark.e2e

BROKER_URL = redis_db_url(11)
API = "/api/v1"
SCRAPE_INTERVAL = "1s"
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


@pytest.fixture(scope="module")
def observed(database_url: str, redis_url: str, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    from models.migration import create_database_if_missing, drop_database, upgrade_to_head

    prometheus_bin, node_exporter_bin = (
        shutil.which("prometheus"),
        shutil.which("prometheus-node-exporter"),
    )
    assert prometheus_bin, "prometheus is not installed (make test installs it on Debian as root)"
    assert node_exporter_bin, "prometheus-node-exporter is not installed"
    db_url = database_url + "_metrics"
    create_database_if_missing(db_url)
    upgrade_to_head(db_url)
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    workdir: Path = tmp_path_factory.mktemp("metrics-stack")
    sink, smtp = HttpSink().start(), SmtpSink().start()
    # A local server speaking Anthropic's wire format, so ai_* metrics come from real calls.
    provider = ProviderServer().start()
    provider.script(anthropic_message("hello"))
    stack = Stack(
        database_url=db_url,
        redis_url=redis_url,
        broker_url=BROKER_URL,
        workdir=workdir,
        extra_env={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "JOB_INTERVAL_OUTBOX_RELAY": "1s",
            "LOG_LEVEL": "WARNING",
            "AI_PROVIDER": "anthropic",
            "AI_API_KEY": "sk-ant-test",
            "AI_MODEL": "claude-test",
            "AI_BASE_URL": provider.url,
        },
    )
    prometheus_port, node_port = free_port(), free_port()
    clients: list[httpx.Client] = []
    config = render_local_config(
        api_port=stack.api_port,
        worker_port=stack.worker_metrics_port,
        flower_port=free_port(),
        alertmanager_port=free_port(),
        prometheus_port=prometheus_port,
        rule_files=[str(ROOT / "monitoring" / "alerts" / "*.yml")],
        scrape_interval=SCRAPE_INTERVAL,
        exporter_ports={"node-exporter": node_port},
    )
    (workdir / "prometheus.yml").write_text(config)
    check = subprocess.run(
        ["promtool", "check", "config", str(workdir / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    try:
        stack.start_api()
        stack.start_worker()
        stack.start_beat()
        stack._spawn(
            "node-exporter",
            [node_exporter_bin, f"--web.listen-address=127.0.0.1:{node_port}"],
            stack.env(),
        )
        stack._spawn(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stack.env(),
        )
        stack.wait_ready()
        stack.wait_worker()
        prometheus = Prometheus(f"http://127.0.0.1:{prometheus_port}")
        clients.append(prometheus.http)
        wait_until(
            lambda: prometheus.http.get("/-/ready").status_code == 200, 60, what="prometheus"
        )
        traffic = Traffic()
        api = CountingApi(stack.api_url, traffic)
        clients.append(api.http)
        _drive_traffic(api, sink, smtp.port)
        chat = api.request(
            "POST", "/ai/chat", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.status_code == 200, chat.text
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
        yield {"prometheus": prometheus, "traffic": traffic, "finished": finished, "stack": stack}
    finally:
        for client in clients:
            client.close()
        stack.stop()
        sink.stop()
        smtp.stop()
        provider.stop()
        broker.flushdb()
        broker.close()
        drop_database(db_url)


def test_api_and_worker_targets_are_up(observed: dict[str, Any]) -> None:
    targets = observed["prometheus"].targets()
    assert targets["workflows-api"] == "up"
    assert targets["workflows-worker"] == "up"
    assert targets["node-exporter"] == "up"


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
