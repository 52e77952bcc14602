"""The web console in a real browser against a real stack.

Starts gunicorn (serving the built console at `/`), the stream service on a
port of its own (as `make up` does), a Celery worker and beat on the run's
throwaway database, then runs `node web/e2e/run.mjs`: headless Debian
Chromium driven by playwright-core walks register → sign in → editor (errors
pinned to their paths) → enable → send an event → execution `waiting` →
approve in the inbox → completed with its trace → the live timeline and inbox
moved by another client's approval over the stream, and polling while the
stream service is unreachable → a cron schedule (its bad
cron rejected at the field, its next runs, disabled, deleted), saving a
screenshot of every page under test-artifacts/web/. Each phase is a test here,
read from the script's results.json.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.stack import ROOT, Stack
from tests.support import redis_db_url

pytestmark = pytest.mark.e2e

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


def _prepare() -> list[str]:
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


@pytest.fixture(scope="module")
def console_run(
    web_database_url: str, redis_url: str, tmp_path_factory: Any
) -> Iterator[dict[str, Any]]:
    missing = _prepare()
    if missing:
        pytest.fail("the console e2e needs: " + "; ".join(missing))
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    stack = Stack(
        database_url=web_database_url,
        redis_url=redis_url,
        broker_url=BROKER_URL,
        workdir=tmp_path_factory.mktemp("web-stack"),
        jwt_secret="web-e2e-" + secrets.token_hex(24),
        extra_env={
            "LOG_LEVEL": "WARNING",
            "JOB_INTERVAL_OUTBOX_RELAY": "1s",
            "WEB_DIST_DIR": str(WEB / "dist"),
        },
    )
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    try:
        # The live timeline and inbox open the streams there (cross-origin, as under `make up`).
        stack.start_streams()
        stack.start_api()
        stack.start_worker()
        stack.start_beat()
        stack.wait_ready()
        stack.wait_worker()
        completed = subprocess.run(
            ["node", str(WEB / "e2e" / "run.mjs")],
            cwd=WEB,
            env={
                **os.environ,
                "IW_BASE_URL": stack.api_url,
                "IW_STREAM_URL": stack.stream_url,
                "IW_ARTIFACTS_DIR": str(ARTIFACTS),
                "CHROMIUM_PATH": CHROMIUM,
            },
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            check=False,
        )
        (ARTIFACTS / "run.log").write_text(completed.stdout + completed.stderr)
        results_file = ARTIFACTS / "results.json"
        if not results_file.exists():
            pytest.fail(
                f"web/e2e/run.mjs exited {completed.returncode} without results:\n"
                f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
            )
        results = json.loads(results_file.read_text())
        results["logs"] = {name: stack.log(name) for name in ("api", "streams", "worker", "beat")}
        yield results
    finally:
        for name in ("api", "streams", "worker", "beat"):
            log = stack.workdir / f"{name}.log"
            if log.exists():
                shutil.copy(log, ARTIFACTS / f"{name}.log")
        stack.stop()
        broker.flushdb()
        broker.close()


def _check(results: dict[str, Any], name: str) -> None:
    phase = results["phases"].get(name)
    assert phase is not None, f"phase {name} did not run"
    # Every endpoint the console needs exists now: a phase that skips is a regression.
    assert phase["status"] != "skipped", f"{name} skipped: {phase['reason']}"
    assert phase["status"] == "passed", (
        f"{name} failed at {phase.get('url')}:\n{phase.get('error')}\n"
        f"(screenshots in {ARTIFACTS}; API log tail:\n{results['logs']['api'][-2000:]})"
    )


@pytest.mark.parametrize(
    "phase",
    [
        "console_served_under_csp",
        "register",
        "sign_out_and_in",
        "editor_shows_validation_errors_at_their_path",
        "fix_and_create_workflow",
        "enable_workflow",
        "dry_run",
        "parallel_workflow_graph",
        "workflows_list",
        "send_event_and_reach_waiting",
        "approve_in_inbox",
        "execution_completes_with_trace",
        "shadow_run",
        "live_timeline",
        "live_approvals_inbox",
        "polling_fallback_without_the_stream",
        "pause_resume_cancel",
        "schedules",
        "analytics",
        "api_keys",
        "audit_log",
        "organizations",
        "no_csp_violations_or_page_errors",
    ],
)
def test_console_phase(console_run: dict[str, Any], phase: str) -> None:
    _check(console_run, phase)


def test_every_page_has_a_screenshot(console_run: dict[str, Any]) -> None:
    shots = [Path(p) for p in console_run["screenshots"]]
    assert len(shots) >= 15, shots
    assert all(p.exists() and p.stat().st_size > 5000 for p in shots)
