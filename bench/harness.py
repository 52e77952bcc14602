"""What the benchmarks share: throwaway databases, the engine bench's module, CPU readings
from /proc, free ports and the Celery worker's flags.

The scripts run as `python bench/<name>.py`, so this directory is first on
sys.path and they import this module by name; the project root is added for
the packages they measure.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCH = ROOT.parent / "shared" / "bench"
SERVER_URL = os.environ.get(
    "BENCH_DATABASE_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def throwaway_database(prefix: str) -> str:
    """A new database at the schema's head; the caller drops it (models.migration)."""
    from models.migration import create_database_if_missing, database_url_of, upgrade_to_head

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    url = database_url_of(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    create_database_if_missing(url)
    upgrade_to_head(url)
    return url


def engine_bench() -> ModuleType:
    """bench/engine.py (its module name would shadow the `engine` package)."""
    spec = importlib.util.spec_from_file_location("bench_engine", ROOT / "bench" / "engine.py")
    if spec is None or spec.loader is None:
        raise SystemExit("bench/engine.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def process_cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of these processes (from /proc: Postgres runs on this host)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def database_backends(db_engine: Any) -> list[int]:
    """The server processes serving this engine's (throwaway) database, its pool's included."""
    from sqlalchemy import text

    with db_engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_flags(concurrency: int) -> list[str]:
    """`celery ... worker` as every bench runs it: prefork, quiet, no cluster chatter."""
    return [
        "worker",
        "-c",
        str(concurrency),
        "-P",
        "prefork",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
