"""`iwctl verify --chaos local` against the stack users run: `make up`'s scripts/stack.sh.

The stack comes up on side ports with its own directory (pid files, logs) and a
throwaway database; iwctl logs in as a new user and runs the check with its
chaos killing the worker's pool processes (found through the stack's pid file)
while the executions run. It must pass, say so, leave the worker's metrics
server alone, and remove its probe workflow. A small N keeps it short; the
issue's 200-execution run is in the README.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.engine import make_url

from cli.verify.chaos import listening_sockets
from models.migration import drop_database
from tests.conftest import SERVER_URL
from tests.e2e.stack import ROOT, free_port
from tests.support import redis_db_url

pytestmark = pytest.mark.e2e

APP_REDIS = redis_db_url(14)
BROKER_REDIS = redis_db_url(15)
IWCTL = str(Path(sys.executable).parent / "iwctl")
PASSWORD = "a-long-password"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    name = f"iw_verify_{os.getpid()}_{secrets.token_hex(3)}"
    database = make_url(SERVER_URL).set(drivername="postgresql", database=name)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PROMETHEUS_MULTIPROC", "DATABASE_URL", "REDIS_URL", "CELERY_"))
        and not key.startswith("IWCTL_")
    }
    env.update(
        {
            "IW_VAR_DIR": str(tmp_path / "var"),
            "IW_ENV_FILE": str(tmp_path / "stack.env"),
            "DATABASE_URL": database.render_as_string(hide_password=False),
            "REDIS_URL": APP_REDIS,
            "CELERY_BROKER_URL": BROKER_REDIS,
            "API_PORT": str(free_port()),
            "WORKER_METRICS_PORT": str(free_port()),
            "FLOWER_PORT": str(free_port()),
            "PROMETHEUS_PORT": str(free_port()),
            "ALERTMANAGER_PORT": str(free_port()),
            "NODE_EXPORTER_PORT": str(free_port()),
            "POSTGRES_EXPORTER_PORT": str(free_port()),
            "REDIS_EXPORTER_PORT": str(free_port()),
            "WORKER_CONCURRENCY": "2",
            "WEB_CONCURRENCY": "1",
            # The deployment must be allowed to reach iwctl's sink (on this machine).
            "OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8",
            "IWCTL_CONFIG": str(tmp_path / "iwctl.json"),
        }
    )
    env["IWCTL_API_URL"] = f"http://127.0.0.1:{env['API_PORT']}"
    for url in (APP_REDIS, BROKER_REDIS):
        redis.Redis.from_url(url).flushdb()
    script = str(ROOT / "scripts" / "stack.sh")
    try:
        up = subprocess.run(
            [script, "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
            check=False,
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:
        down = subprocess.run(
            [script, "down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        drop_database(env["DATABASE_URL"])
        for url in (APP_REDIS, BROKER_REDIS):
            client = redis.Redis.from_url(url)
            client.flushdb()
            client.close()
    assert down.returncode == 0, down.stdout + down.stderr


def iwctl(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IWCTL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def metrics_server(worker: int) -> list[int]:
    """The worker's children that hold its listening socket (its metrics server)."""
    listening = listening_sockets(worker)
    servers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if ppid == worker and any(link[8:-1] in listening for link in links):
            servers.append(int(entry.name))
    return servers


def test_verify_with_local_chaos_passes_and_removes_its_probe(stack: dict[str, str]) -> None:
    api = stack["IWCTL_API_URL"]
    username = f"verify{secrets.token_hex(3)}"
    registered = httpx.post(
        f"{api}/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    assert iwctl(stack, "login", "-u", username, "-p", PASSWORD).returncode == 0
    worker = int((Path(stack["IW_VAR_DIR"]) / "run" / "worker.pid").read_text())
    servers_before = metrics_server(worker)
    assert len(servers_before) == 1

    checked = iwctl(
        stack,
        "verify",
        "--executions", "30",
        "--rate", "10",
        "--chaos", "local",
        "--chaos-interval", "1",
        "--timeout", "240",
        "--json",
        timeout=400,
    )  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
    verdict = json.loads(checked.stdout)
    assert verdict["ok"] is True
    assert (verdict["requested"], verdict["accepted"], verdict["completed"]) == (30, 30, 30)
    assert verdict["lost"] == verdict["duplicated_effects"] == 0
    assert verdict["duplicated_transitions"] == 0
    assert verdict["workers_killed"] >= 3
    assert verdict["effects_performed"] == 30
    assert verdict["p50_seconds"] <= verdict["p95_seconds"] <= verdict["p99_seconds"]
    assert "chaos: SIGKILL a pool process of worker" in checked.stderr
    assert metrics_server(worker) == servers_before
    listed = iwctl(stack, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert not [w for w in json.loads(listed.stdout)["workflows"] if "verify" in w["workflow_id"]]
