"""The console behind a same-origin proxy: the proxy routes the stream paths to the
stream service and everything else to the API, which then names no stream URL
(GET /streams/endpoint answers null). The console opens the streams with
relative URLs, and the live timeline, the live inbox and the polling fallback
work as they do against the stream service's own origin (test_console.py).
Only the phases that lead to and cover the live views run here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.web.console import ARTIFACTS, check_phase, console_run

pytestmark = pytest.mark.e2e

PROXY_ARTIFACTS = ARTIFACTS / "behind-proxy"
PHASES = [
    "console_served_under_csp",
    "register",
    "sign_out_and_in",
    "editor_shows_validation_errors_at_their_path",
    "fix_and_create_workflow",
    "enable_workflow",
    "send_event_and_reach_waiting",
    "approve_in_inbox",
    "execution_completes_with_trace",
    "live_timeline",
    "live_approvals_inbox",
    "polling_fallback_without_the_stream",
    "no_csp_violations_or_page_errors",
]


@pytest.fixture(scope="module")
def proxied_results(
    web_database_url: str, redis_url: str, tmp_path_factory: Any
) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("web-proxy-stack")
    with console_run(
        web_database_url,
        redis_url,
        workdir,
        PROXY_ARTIFACTS,
        behind_proxy=True,
        phases=PHASES,
    ) as results:
        yield results


@pytest.mark.parametrize("phase", PHASES)
def test_console_phase_behind_a_same_origin_proxy(
    proxied_results: dict[str, Any], phase: str
) -> None:
    check_phase(proxied_results, phase, PROXY_ARTIFACTS)


def test_only_the_listed_phases_ran(proxied_results: dict[str, Any]) -> None:
    assert sorted(proxied_results["phases"]) == sorted(PHASES)
