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
(The machinery is in tests/e2e/web/console.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.web.console import ARTIFACTS, check_phase, console_run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def console_results(
    web_database_url: str, redis_url: str, tmp_path_factory: Any
) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("web-stack")
    with console_run(web_database_url, redis_url, workdir, ARTIFACTS) as results:
        yield results


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
def test_console_phase(console_results: dict[str, Any], phase: str) -> None:
    check_phase(console_results, phase, ARTIFACTS)


def test_every_page_has_a_screenshot(console_results: dict[str, Any]) -> None:
    shots = [Path(p) for p in console_results["screenshots"]]
    assert len(shots) >= 15, shots
    assert all(p.exists() and p.stat().st_size > 5000 for p in shots)
