"""`--chaos local`: SIGKILL the pool processes of one Celery worker on this machine.

Only the pool processes of the worker's main process are killed (its children
that run the steps; the main process starts new ones), never the main process,
never its metrics server (the child holding a listening socket), never anything
else: the worker is named by its pid or by the pid file `make up` writes
(`var/run/worker.pid`).
"""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path

from cli.errors import UserError

PROC = Path("/proc")
LISTEN = "0A"  # the state column of /proc/net/tcp


def worker_pid(pid: int | None, var_dir: str) -> int:
    """The worker's main process: `pid`, else the one in `var_dir`/run/worker.pid; it
    must be a running Celery process."""
    if pid is None:
        pid_file = Path(var_dir) / "run" / "worker.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            raise UserError(
                f"--chaos local: no worker pid in {pid_file}",
                hint="pass --worker-pid PID, or --var-dir of the stack `make up` started",
            ) from None
    try:
        command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        raise UserError(f"--chaos local: no process {pid} on this machine") from None
    if "celery" not in command:
        raise UserError(f"--chaos local: process {pid} is not a Celery worker ({command[:80]})")
    return pid


def pool_processes(parent: int) -> list[int]:
    """The worker's live children that serve no socket: its pool processes (the
    worker's metrics server is a child too, holding its listening socket)."""
    listening = listening_sockets(parent)
    children = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:  # gone meanwhile
            continue
        if int(ppid) == parent and state != "Z" and not holds_any(entry, listening):
            children.append(int(entry.name))
    return children


def listening_sockets(pid: int) -> set[str]:
    """Inodes of the TCP sockets listening in this process's network namespace."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN:
                inodes.add(fields[9])
    return inodes


def holds_any(process: Path, inodes: set[str]) -> bool:
    try:
        links = [os.readlink(fd) for fd in (process / "fd").iterdir()]
    except OSError:  # gone meanwhile, or not ours to read
        return False
    return any(link.startswith("socket:[") and link[8:-1] in inodes for link in links)


class Chaos:
    """Kills one pool process of the worker every `interval` seconds until stopped."""

    def __init__(self, parent: int, interval: float, seed: int | None = None) -> None:
        self.parent = parent
        self.interval = interval
        self.killed: list[int] = []
        self._stop = threading.Event()
        self._random = random.Random(seed)  # noqa: S311 - picks a victim, guards nothing
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Chaos:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            children = pool_processes(self.parent)
            if not children:
                continue  # the worker is starting new ones
            victim = self._random.choice(children)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.killed.append(victim)
