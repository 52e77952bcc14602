"""The differential test of tests/integration/engine/test_dry_run_matches_real_run.py
once through a real stack: every example workflow and sample payload, dry-run over
HTTP (`POST /workflows/{id}/test`) and run by a real Celery worker (gunicorn, the
worker, beat and its relay), must agree on the path, each step's decision and the
final status and result, or wait at the same step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.engine.conftest import FINAL, Api
from tests.e2e.stack import Stack
from tests.integration.engine.example_samples import example_cases, load_example, point_at_sink
from tests.integration.engine.run_summary import (
    start_as_triggered,
    summarise_dry_run,
    summarise_real_run,
)
from tests.integration.engine.sinks import HttpSink
from tests.support import unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(engine_stack: Stack, http_sink: HttpSink) -> Any:
    """Each example deployed once, in an organization of its own."""
    cache: dict[Path, tuple[Api, dict[str, Any]]] = {}

    def deploy(file: Path) -> tuple[Api, dict[str, Any]]:
        if file not in cache:
            owner = Api(engine_stack.api_url).register(unique("diff"))
            cache[file] = owner, owner.deploy(load_example(file, http_sink.url))
        return cache[file]

    return deploy


def start(owner: Api, workflow: dict[str, Any], payload: dict[str, Any]) -> str:
    def execute() -> str:
        started = owner.post(f"/workflows/{workflow['id']}/execute", {"payload": payload})
        assert started.status_code == 202, started.text
        return str(started.json()["id"])

    return start_as_triggered(workflow, payload, lambda event: owner.send(event, payload), execute)


@pytest.mark.parametrize(("file", "payload"), example_cases())
def test_an_example_takes_the_same_path_on_a_celery_worker_as_in_the_dry_run(
    deployed: Any, http_sink: HttpSink, file: Path, payload: dict[str, Any]
) -> None:
    owner, workflow = deployed(file)
    payload = point_at_sink(payload, http_sink.url)
    answer = owner.post(f"/workflows/{workflow['id']}/test", {"payload": payload})
    assert answer.status_code == 200, answer.text
    expected = summarise_dry_run(answer.json())
    execution_id = start(owner, workflow, payload)
    body = owner.settle(execution_id, timeout=60, states=FINAL | {"waiting"})
    assert summarise_real_run(body, owner.trace(execution_id)) == expected
