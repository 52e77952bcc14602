"""A real API for the `iwctl` tests: gunicorn (2 workers), a Celery worker and beat as
subprocesses on a throwaway database, driven by the installed console script.

Each test gets its own user (its own organization) and its own config file, so
tests do not see each other's workflows or sessions.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.stack import Stack, free_port
from tests.support import redis_db_url

# A broker DB of its own: the worker here must not take tickets other suites publish.
BROKER_URL = os.environ.get("TEST_CLI_BROKER_URL", redis_db_url(9))
IWCTL = str(Path(sys.executable).parent / "iwctl")
API = "/api/v1"
PASSWORD = "correct-horse-9"


@pytest.fixture(scope="package")
def stack(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Its own database (beat's relay and sweeper act on every row of the database they
    watch: on the run's shared one they would run other suites' executions), and it
    stops once the CLI tests are done."""
    from models.migration import create_database_if_missing, drop_database, upgrade_to_head

    cli_database_url = database_url + "_cli"
    create_database_if_missing(cli_database_url)
    upgrade_to_head(cli_database_url)
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    running = Stack(
        database_url=cli_database_url,
        redis_url=redis_url,
        broker_url=BROKER_URL,
        workdir=tmp_path_factory.mktemp("cli-stack"),
        extra_env={"LOG_LEVEL": "WARNING"},
    )
    try:
        running.start_streams()  # `logs --follow` reads the live stream
        running.start_api()
        running.start_worker()
        running.start_beat()  # fires due retries and relays the outbox
        running.wait_ready()
        running.wait_worker()
        yield running
    finally:
        running.stop()
        broker.flushdb()
        broker.close()
        drop_database(cli_database_url)


@pytest.fixture(scope="package")
def api_url(stack: Stack) -> str:
    return stack.api_url


@pytest.fixture(scope="session")
def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="package")
def endpoints(api_url: str) -> set[str]:
    """`METHOD /path` of every operation the running API documents."""
    spec = httpx.get(f"{api_url}{API}/openapi.json", timeout=10).json()
    return {
        f"{method.upper()} {path.removeprefix(API)}"
        for path, operations in spec["paths"].items()
        for method in operations
        if method != "parameters"
    }


@dataclass
class Account:
    username: str
    password: str
    api_url: str

    def login_tokens(self) -> dict[str, Any]:
        response = httpx.post(
            f"{self.api_url}{API}/auth/login",
            json={"username": self.username, "password": self.password},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self.login_tokens()["access_token"]
        return httpx.request(
            method,
            f"{self.api_url}{API}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            **kwargs,
        )


def register_account(api_url: str) -> Account:
    username = f"cli{secrets.token_hex(4)}"
    response = httpx.post(
        f"{api_url}{API}/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return Account(username, PASSWORD, api_url)


@pytest.fixture
def account(api_url: str) -> Account:
    return register_account(api_url)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Iwctl:
    """Runs the installed `iwctl` with a private config file and HOME."""

    def __init__(self, home: Path, api_url: str) -> None:
        self.home = home
        self.config = home / "iwctl.json"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("IWCTL_")}
        self.env.update(
            {"HOME": str(home), "IWCTL_CONFIG": str(self.config), "IWCTL_API_URL": api_url}
        )

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> Result:
        environment = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        completed = subprocess.run(
            [IWCTL, *args],
            env=environment,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.exit_code == 0, (args, result)
        assert "Traceback" not in result.stderr
        return result

    def login(self, account: Account) -> Result:
        return self.ok("login", "-u", account.username, "-p", account.password)


@pytest.fixture
def iwctl(tmp_path: Path, api_url: str) -> Iwctl:
    return Iwctl(tmp_path, api_url)


@pytest.fixture
def cli(iwctl: Iwctl, account: Account) -> Iwctl:
    """iwctl, logged in as a fresh user (an admin of their own organization)."""
    iwctl.login(account)
    return iwctl
