"""The console's browser e2e: a real stack, then `node web/e2e/run.mjs` against it.

Builds the console first when web/dist is missing or older than web/src
(scripts/web.sh prepare: npm ci from the lock file, vite build, Debian chromium
when root); `make test` and `make web-test` have done that already.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.proxy import same_origin_proxy
from tests.e2e.stack import ROOT, Stack
from tests.support import redis_db_url

BROKER_URL = os.environ.get("TEST_WEB_BROKER_URL", redis_db_url(10))
WEB = ROOT / "web"
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCRIPT_TIMEOUT = 240


def _is_stale() -> bool:
    """Whether web/dist is missing or older than the console's sources."""
    built = WEB / "dist" / "index.html"
    if not built.is_file():
        return True
    sources = [WEB / "index.html", WEB / "package-lock.json", *(WEB / "src").rglob("*")]
    return max(p.stat().st_mtime for p in sources if p.is_file()) > built.stat().st_mtime


def prepare() -> list[str]:
    """Build the console when it is stale (and get Chromium), then list what is still missing."""
    if shutil.which("npm") and (_is_stale() or not os.access(CHROMIUM, os.X_OK)):
        subprocess.run([str(ROOT / "scripts" / "web.sh"), "prepare"], check=True, timeout=600)
    missing = []
    if not shutil.which("node"):
        missing.append("node (Node 20.19+)")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        missing.append("web/node_modules (run `make web-build`)")
    if not (WEB / "dist" / "index.html").is_file():
        missing.append("web/dist (run `make web-build`)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    return missing


SERVICES = ("api", "streams", "worker", "beat")


@contextmanager
def console_run(
    database_url: str,
    redis_url: str,
    workdir: Path,
    artifacts: Path,
    *,
    behind_proxy: bool = False,
    phases: Sequence[str] = (),
) -> Iterator[dict[str, Any]]:
    """Run the script; yields its results.json with the services' log tails.

    The stream service runs on its own port. By default the console opens the
    streams there, cross-origin, as under `make up`; `behind_proxy` puts a
    same-origin proxy in front (stream paths to the stream service, the rest to
    the API, which then names no stream URL) and points the browser at it.
    `phases`: only those (and the script skips none of them silently: a phase
    that needs an unlisted one fails)."""
    missing = prepare()
    if missing:
        pytest.fail("the console e2e needs: " + "; ".join(missing))
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    stack = Stack(
        database_url=database_url,
        redis_url=redis_url,
        broker_url=BROKER_URL,
        workdir=workdir,
        jwt_secret="web-e2e-" + secrets.token_hex(24),
        extra_env={
            "LOG_LEVEL": "WARNING",
            "JOB_INTERVAL_OUTBOX_RELAY": "1s",
            "WEB_DIST_DIR": str(WEB / "dist"),
        },
    )
    if artifacts.exists():
        shutil.rmtree(artifacts)
    artifacts.mkdir(parents=True)
    try:
        stack.start_streams(redirect=not behind_proxy)
        stack.start_api()
        stack.start_worker()
        stack.start_beat()
        stack.wait_ready()
        stack.wait_worker()
        with ExitStack() as proxy:
            if behind_proxy:
                base = proxy.enter_context(same_origin_proxy(stack.api_url, stack.stream_url))
                stream_url = ""
            else:
                base, stream_url = stack.api_url, stack.stream_url
            results = _run_script(base, stream_url, artifacts, phases)
        results["logs"] = {name: stack.log(name) for name in SERVICES}
        yield results
    finally:
        for name in SERVICES:
            log = stack.workdir / f"{name}.log"
            if log.exists():
                shutil.copy(log, artifacts / f"{name}.log")
        stack.stop()
        broker.flushdb()
        broker.close()


def _run_script(
    base_url: str, stream_url: str, artifacts: Path, phases: Sequence[str]
) -> dict[str, Any]:
    completed = subprocess.run(
        ["node", str(WEB / "e2e" / "run.mjs")],
        cwd=WEB,
        env={
            **os.environ,
            "IW_BASE_URL": base_url,
            "IW_STREAM_URL": stream_url,
            "IW_E2E_PHASES": ",".join(phases),
            "IW_ARTIFACTS_DIR": str(artifacts),
            "CHROMIUM_PATH": CHROMIUM,
        },
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    (artifacts / "run.log").write_text(completed.stdout + completed.stderr)
    results_file = artifacts / "results.json"
    if not results_file.exists():
        pytest.fail(
            f"web/e2e/run.mjs exited {completed.returncode} without results:\n"
            f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
        )
    return dict(json.loads(results_file.read_text()))


def check_phase(results: dict[str, Any], name: str, artifacts: Path) -> None:
    phase = results["phases"].get(name)
    assert phase is not None, f"phase {name} did not run"
    # Every endpoint the console needs exists now: a phase that skips is a regression.
    assert phase["status"] != "skipped", f"{name} skipped: {phase['reason']}"
    assert phase["status"] == "passed", (
        f"{name} failed at {phase.get('url')}:\n{phase.get('error')}\n"
        f"(screenshots in {artifacts}; API log tail:\n{results['logs']['api'][-2000:]})"
    )
