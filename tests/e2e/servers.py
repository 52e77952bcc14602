"""Private Redis and Postgres servers that a test may kill and restart.

The machine's shared servers are never touched: each server here listens on a
free side port of 127.0.0.1, keeps its files in a temporary directory and is
gone when the test is done. Postgres is a cluster of its own made with the
Debian server package's `initdb`/`pg_ctl`, run as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.e2e.stack import free_port, wait_until


def postgres_bin_dir() -> Path | None:
    """The newest Debian server package's binaries (initdb, pg_ctl), if installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    return Path(found[-1]).parent if found else None


def can_run_private_servers() -> str | None:
    """Why private servers cannot run here, or None when they can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if postgres_bin_dir() is None:
        return "the Debian postgresql server package (initdb, pg_ctl) is not installed"
    if os.geteuid() != 0 and _user_name() != "postgres":
        return "initdb/pg_ctl run as the postgres user: needs root (runuser) or that user"
    return None


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


class PrivateRedis:
    """`redis-server` without persistence: a kill loses everything it held."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(self.url(0))
        try:
            wait_until(client.ping, 10, interval=0.05, what="private redis-server")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        self.kill()


class PrivatePostgres:
    """A Postgres cluster of its own (initdb), owned and run by the `postgres` user."""

    def __init__(self, workdir: Path) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("no Debian postgresql server package")
        self.bin_dir = bin_dir
        self.port = free_port()
        # A directory of its own outside the test's tmp path: the postgres user must
        # be able to reach it, and pytest's tmp path may sit under a private home.
        self.root = Path(tempfile.mkdtemp(prefix="iw-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.log = workdir / "postgres.log"
        self.server_log = self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        with self.log.open("ab") as log:
            subprocess.run(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                timeout=timeout,
                check=True,
            )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c max_connections=200",
                # Never a crash of the machine here, only of the server: the OS keeps
                # what was written, and the test goes faster.
                "-c fsync=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.server_log), "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """`immediate`: every server process quits at once, as in a crash (recovery
        runs at the next start)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
