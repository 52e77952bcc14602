"""The first session `make up` prints works verbatim, in a copy of the repository.

The copy holds only the repository's files (what a clone has; no ../shared), and
the stack is brought up by scripts/stack.sh as `make up` does, on side ports,
with a plain `postgresql://` DATABASE_URL naming a database that does not exist
yet. The printed commands are then run with bash from the copy's root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.engine import make_url

from models.migration import drop_database
from tests.conftest import SERVER_URL
from tests.e2e.stack import ROOT, free_port
from tests.support import redis_db_url

pytestmark = pytest.mark.e2e

APP_REDIS = redis_db_url(7)
BROKER_REDIS = redis_db_url(8)
SESSION_START = "Next (a first session, from the repository root):"
SESSION_END = "More workflows in examples/"


def repository_files() -> list[str]:
    """Tracked files and new ones not ignored: what a clone of this tree would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git metadata to list its files")
    copy = tmp_path / "clone"
    for name in repository_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    # The virtualenv `make install` made; the copy's own code is what runs (cwd).
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


@pytest.fixture
def stack_env() -> Iterator[dict[str, str]]:
    name = f"iw_first_{os.getpid()}_{secrets.token_hex(3)}"
    server = make_url(SERVER_URL)
    plain_url = server.set(drivername="postgresql", database=name).render_as_string(
        hide_password=False
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PROMETHEUS_MULTIPROC", "DATABASE_URL", "REDIS_URL", "CELERY_"))
    }
    env.update(
        {
            "DATABASE_URL": plain_url,
            "REDIS_URL": APP_REDIS,
            "CELERY_BROKER_URL": BROKER_REDIS,
            "API_PORT": str(free_port()),
            "WORKER_METRICS_PORT": str(free_port()),
            "FLOWER_PORT": str(free_port()),
            "PROMETHEUS_PORT": str(free_port()),
            "ALERTMANAGER_PORT": str(free_port()),
            "WORKER_CONCURRENCY": "1",
            "WEB_CONCURRENCY": "1",
        }
    )
    for url in (APP_REDIS, BROKER_REDIS):
        redis.Redis.from_url(url).flushdb()
    try:
        yield env
    finally:
        drop_database(plain_url)
        for url in (APP_REDIS, BROKER_REDIS):
            client = redis.Redis.from_url(url)
            client.flushdb()
            client.close()


def printed_session(output: str) -> str:
    """The commands between the session's heading and its closing line, as printed."""
    start = output.index(SESSION_START) + len(SESSION_START)
    return output[start : output.index(SESSION_END, start)]


def _run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_printed_first_session_runs_as_printed(clone: Path, stack_env: dict[str, str]) -> None:
    stack = clone / "scripts" / "stack.sh"
    try:
        up = _run([str(stack), "up"], clone, stack_env, timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "../shared" not in up.stdout
        session = printed_session(up.stdout)
        ran = _run(["bash", "-euo", "pipefail", "-c", session], clone, stack_env, timeout=60)
        assert ran.returncode == 0, session + ran.stdout + ran.stderr
        assert '"execution_ids"' in ran.stdout, ran.stdout

        api = f"http://127.0.0.1:{stack_env['API_PORT']}/api/v1"
        with httpx.Client(base_url=api, timeout=10) as client:
            login = client.post(
                "/auth/login", json={"username": "ada", "password": "a-long-password"}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            deadline = time.monotonic() + 30
            while True:
                [execution] = client.get("/executions", headers=headers).json()["executions"]
                if execution["status"] == "completed" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert execution["status"] == "completed", execution
            assert execution["result"] == "allowed"
            records = client.get("/records", params={"entity": "order"}, headers=headers).json()
            assert [r["data"]["status"] for r in records["records"]] == ["accepted"]
    finally:
        down = _run([str(stack), "down"], clone, stack_env, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
