"""iwctl verify's parts: the idempotent sink, the verdict, and which processes chaos kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.verify.chaos import pool_processes
from cli.verify.check import duplicated_transitions, judge
from cli.verify.probe import STEP_IDS, probe_workflow
from cli.verify.sink import Effects, Sink
from engine.validation import validate_workflow


@pytest.fixture
def sink() -> Any:
    running = Sink(fail_every=4).start()
    yield running
    running.stop()


def post(sink: Sink, key: str | None, body: dict[str, Any]) -> int:
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(
        f"http://127.0.0.1:{sink.port}/effect", json=body, headers=headers
    ).status_code


def test_the_sink_performs_each_key_once_and_fails_every_fourth_probes_first_try(
    sink: Sink,
) -> None:
    assert post(sink, "x1:call:1:0", {"run": "r", "n": 1}) == 200
    assert post(sink, "x1:call:1:0", {"run": "r", "n": 1}) == 200  # sent again: answered
    assert post(sink, "x4:call:1:0", {"run": "r", "n": 4}) == 503
    assert post(sink, "x4:call:1:0", {"run": "r", "n": 4}) == 200  # the retry
    assert post(sink, "x1:call:1:0", {"run": "r", "n": 2}) == 200  # same key, other body
    assert post(sink, None, {"run": "r", "n": 3}) == 400
    effects = sink.snapshot()
    assert set(effects.performed) == {"x1:call:1:0", "x4:call:1:0"}
    assert effects.repeats == 1
    assert effects.failed_first_tries == 1
    assert effects.conflicts == ["x1:call:1:0"]
    assert effects.without_key == 1


def execution(status: str = "completed", result: str | None = "allowed") -> dict[str, Any]:
    return {
        "status": status,
        "result": result,
        "created_at": "2026-12-06T10:00:00+00:00",
        "completed_at": "2026-12-06T10:00:02.500000+00:00",
    }


def trace(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        {"step_id": s, "branch_key": "", "attempt_group": 1, "attempt": 1, "status": "completed"}
        for s in STEP_IDS
    ]
    return rows + list(extra)


def test_a_clean_run_is_ok_with_its_latencies() -> None:
    ids = ["a", "b"]
    effects = Effects(performed={"a:call:1:0": {}, "b:call:1:0": {}})
    verdict = judge(2, ids, {i: execution() for i in ids}, {i: trace() for i in ids}, effects)
    assert verdict.ok
    assert (verdict.completed, verdict.lost, verdict.duplicated_effects) == (2, 0, 0)
    assert verdict.percentile(50) == verdict.percentile(99) == 2.5


def test_lost_failed_refused_and_repeated_runs_fail_the_check() -> None:
    ids = ["a", "b", "c"]
    executions = {"a": execution(), "b": execution("waiting", None), "c": execution("failed")}
    twice = {"step_id": "call", "branch_key": "", "attempt_group": 1, "attempt": 2,
             "status": "completed"}  # fmt: skip
    traces = {"a": trace(twice), "b": trace(), "c": trace()}
    effects = Effects(
        performed={"a:call:1:0": {}, "a:call:2:0": {}, "zzz:call:1:0": {}}, conflicts=["a:call:1:0"]
    )
    verdict = judge(4, ids, executions, traces, effects)
    assert not verdict.ok
    assert (verdict.accepted, verdict.refused) == (3, 1)
    assert (verdict.completed, verdict.lost, verdict.failed) == (1, 1, 1)
    # a conflict, a second key for `a`, a key of no execution of this run
    assert verdict.duplicated_effects == 3
    assert verdict.duplicated_transitions == 1


def test_a_retried_attempt_is_no_duplicated_transition() -> None:
    failed = {"step_id": "call", "branch_key": "", "attempt_group": 1, "attempt": 1,
              "status": "failed"}  # fmt: skip
    assert duplicated_transitions([failed, *trace()]) == 0


def test_the_probe_is_a_valid_workflow_with_every_kind_of_step() -> None:
    workflow = validate_workflow(probe_workflow("abc", "http://127.0.0.1:9"))
    types = {s["type"] for s in workflow["definition"]["steps"]}
    assert types == {"execute", "action", "wait"}
    assert [s["id"] for s in workflow["definition"]["steps"]][:5] == list(STEP_IDS)


CHILDREN = textwrap.dedent(
    """
    import os, socket, sys, time
    def child(listen):
        if os.fork() == 0:
            if listen:
                server = socket.socket()
                server.bind(("127.0.0.1", 0))
                server.listen()
            time.sleep(60)
            os._exit(0)
    child(True)
    child(False)
    child(False)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if int(ppid) == pid:
                found.append(int(entry.name))
    return found


def test_chaos_targets_the_children_that_serve_no_socket() -> None:
    parent = subprocess.Popen([sys.executable, "-c", CHILDREN], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 5
        while len(found := pool_processes(parent.pid)) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the listening child may not have bound yet
        assert len(found) == 2
        assert parent.pid not in found
    finally:
        for child in children_of(parent.pid):
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_chaos_refuses_a_process_that_is_no_celery_worker(tmp_path: Any) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "worker.pid").write_text("1")
    result = CliRunner().invoke(
        cli, ["verify", "--chaos", "local", "--var-dir", str(tmp_path)], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "is not a Celery worker" in result.output
    missing = CliRunner().invoke(cli, ["verify", "--chaos", "local", "--var-dir", "/nonexistent"])
    assert missing.exit_code == 1
    assert "no worker pid" in missing.output
    alone = CliRunner().invoke(cli, ["verify", "--worker-pid", "1"])
    assert alone.exit_code == 2


def test_verify_json_output_is_one_document() -> None:
    # --json keeps progress off stdout (checked on the shape of `show`'s document).
    from cli.commands.verify import show
    from cli.context import Context

    verdict = judge(1, ["a"], {"a": execution()}, {"a": trace()},
                    Effects(performed={"a:call:1:0": {}}))  # fmt: skip
    runner = CliRunner()
    with runner.isolation() as (out, _err, _):
        show(Context(json=True), verdict, 3, "run1")
        document = json.loads(out.getvalue())
    assert document["ok"] is True and document["workers_killed"] == 3
