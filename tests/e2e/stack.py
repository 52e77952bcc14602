"""A real running stack for end-to-end tests: gunicorn, Celery worker, beat, Prometheus.

Each process is a subprocess with its own log file under the run's directory;
`Stack.stop()` terminates them all (and their children). Nothing here mocks a
service: the processes talk to the run's throwaway Postgres database and its
dedicated Redis DB.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # the thing is not up yet: keep polling
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what or predicate}: last={last!r}")


@dataclass
class Stack:
    database_url: str
    redis_url: str
    broker_url: str
    workdir: Path
    jwt_secret: str = "e2e-secret-0123456789abcdef"
    api_workers: int = 2
    worker_concurrency: int = 2
    extra_env: Mapping[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    stream_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def stream_url(self) -> str:
        return f"http://127.0.0.1:{self.stream_port}"

    def env(self, metrics_dir: Path | None = None) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PROMETHEUS_MULTIPROC", "DATABASE_URL", "REDIS_URL"))
        }
        env.update(
            {
                "APP_ENV": "test",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "CELERY_BROKER_URL": self.broker_url,
                "JWT_SECRET": self.jwt_secret,
                "API_PORT": str(self.api_port),
                "WORKER_METRICS_PORT": str(self.worker_metrics_port),
                "WEB_CONCURRENCY": str(self.api_workers),
                "WORKER_CONCURRENCY": str(self.worker_concurrency),
                "RATE_LIMIT_AUTH": "100000/minute",
                "RATE_LIMIT_DEFAULT": "100000/second",
                "OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8",
                "PUBLIC_URL": self.api_url,
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        if metrics_dir is not None:
            metrics_dir.mkdir(parents=True, exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        return env

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        # The child keeps its own handle on the log; ours is closed at once.
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_api(self) -> None:
        self._spawn(
            "api",
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "api.wsgi:app"],
            self.env(self.workdir / "metrics-api"),
        )

    def start_streams(self, *, redirect: bool = True) -> None:
        """The stream service (gthread workers), and the API sending its stream routes
        there (`redirect`; without it a proxy in front routes them): call before
        start_api()."""
        env = self.env(self.workdir / "metrics-streams")
        env.update({"STREAM_PORT": str(self.stream_port), "STREAM_WORKERS": "1"})
        # The console, served by the API, opens the streams here from the API's origin.
        origins = [o for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()]
        env["CORS_ORIGINS"] = ",".join([*origins, self.api_url])
        env.pop("STREAM_REDIRECT_URL", None)
        self._spawn(
            "streams",
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn_streams.conf.py"), "api.wsgi:app"],
            env,
        )
        if redirect:
            self.extra_env = {**self.extra_env, "STREAM_REDIRECT_URL": self.stream_url}

    def start_worker(self, name: str = "worker") -> None:
        self._spawn(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "workers.app",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(self.worker_concurrency),
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            self.env(self.workdir / f"metrics-{name}"),
        )

    def start_beat(self, name: str = "beat") -> None:
        self._spawn(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "workers.app",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.workdir / f"{name}-schedule"),
            ],
            self.env(),
        )

    def wait_ready(self, timeout: float = 60) -> None:
        urls = [self.api_url] + ([self.stream_url] if "streams" in self.processes else [])

        def ready() -> bool:
            self.check_alive()
            return all(httpx.get(f"{url}/ready", timeout=2).status_code == 200 for url in urls)

        wait_until(ready, timeout, what="API /ready")

    def wait_worker(self, timeout: float = 60) -> None:
        def serving() -> bool:
            self.check_alive()
            url = f"http://127.0.0.1:{self.worker_metrics_port}/metrics"
            return httpx.get(url, timeout=2).status_code == 200

        wait_until(serving, timeout, what="worker metrics port")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def stop(self, name: str | None = None, sig: int = signal.SIGTERM) -> None:
        names = [name] if name else list(self.processes)
        for key in names:
            process = self.processes.pop(key, None)
            if process is None or process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                continue
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def children(self, name: str) -> list[int]:
        """Pids of the direct children of a process (gunicorn workers, Celery pool)."""
        pid = self.processes[name].pid
        path = Path(f"/proc/{pid}/task/{pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")
