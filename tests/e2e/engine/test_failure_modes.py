"""The failure table of docs/failure-modes.md, row by row, on a real stack.

Each test breaks one part (kill -9 a worker process, lose the broker's
messages, drop every database connection, restart the API, stop beat) while
executions are in flight, and shows that every execution still finishes
exactly once: one completed step-run per step, one ledger entry per effect.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import Counter
from typing import Any

import pytest
import redis
from sqlalchemy import text

from tests.e2e.engine.conftest import BROKER_URL, Api
from tests.e2e.stack import Stack
from tests.integration.engine.sinks import HttpSink, wait_for

pytestmark = pytest.mark.e2e


def call(url: str) -> dict[str, Any]:
    return {
        "type": "http_request",
        "method": "POST",
        "url": url,
        "body": {"e": "{{ execution.id }}"},
    }


def slow_workflow(sink: HttpSink, event: str, slow_path: str, after_path: str) -> dict[str, Any]:
    return {
        "workflow_id": f"fm_{secrets.token_hex(3)}",
        "version": "1",
        "name": "Slow call",
        "definition": {
            "trigger": {"type": "event", "event": event},
            "steps": [
                {
                    "id": "prepare",
                    "type": "execute",
                    "execute": [{"type": "set", "values": {"ready": True}}],
                    "next": "slow",
                },
                {
                    "id": "slow",
                    "type": "execute",
                    # Well above the slowest call (2 s); short, since a claimed
                    # ticket whose process died is relayed after it + 15 s.
                    "timeout": "8s",
                    "execute": [
                        {
                            "type": "http_request",
                            "method": "POST",
                            "url": f"{sink.url}{slow_path}",
                            "body": {"e": "{{ execution.id }}"},
                        }
                    ],
                    "next": "after",
                },
                {
                    "id": "after",
                    "type": "execute",
                    "execute": [
                        {
                            "type": "http_request",
                            "method": "POST",
                            "url": f"{sink.url}{after_path}",
                            "body": {"e": "{{ execution.id }}"},
                        }
                    ],
                    "next": "done",
                },
                {"id": "done", "type": "action", "action": {"type": "allow"}},
            ],
        },
    }


@pytest.fixture
def admin(engine_stack: Stack) -> Api:
    return Api(engine_stack.api_url).register(f"fm{secrets.token_hex(4)}")


def start_batch(admin: Api, sink: HttpSink, count: int, delay: float) -> tuple[list[str], str, str]:
    tag = secrets.token_hex(3)
    slow_path, after_path, event = f"/slow-{tag}", f"/after-{tag}", f"fm.{tag}"
    sink.respond(slow_path, delay=delay)
    admin.deploy(slow_workflow(sink, event, slow_path, after_path))
    ids = [admin.send(event, {"n": n})["execution_ids"][0] for n in range(count)]
    return ids, slow_path, after_path


def assert_each_ran_once(
    admin: Any, db: Any, sink: HttpSink, ids: list[str], slow_path: str, after_path: str
) -> Counter[str]:
    """Every execution completed, each step recorded once, each effect ledgered once;
    returns how many times each execution's slow call reached the receiver."""
    for execution_id in ids:
        body = admin.execution(execution_id)
        assert (body["status"], body["result"]) == ("completed", "allowed"), body
        steps = admin.trace(execution_id)["steps"]
        assert [(s["step_id"], s["attempt"], s["status"]) for s in steps] == [
            ("prepare", 1, "completed"),
            ("slow", 1, "completed"),
            ("after", 1, "completed"),
            ("done", 1, "completed"),
        ]
    with db.connect() as connection:
        ledger = connection.execute(
            text(
                "SELECT execution_id::text, step_id, idempotency_key FROM effects"
                " WHERE execution_id::text = ANY(:ids)"
            ),
            {"ids": ids},
        ).all()
    assert Counter((row[0], row[1]) for row in ledger) == Counter(
        {(e, s): 1 for e in ids for s in ("slow", "after")}
    )
    after_calls = Counter(call.body["e"] for call in sink.calls(after_path))
    assert after_calls == Counter(
        dict.fromkeys(ids, 1)
    )  # effects after the failure: never repeated
    slow_calls = sink.calls(slow_path)
    # A call repeated after a failure carries the same idempotency key: the receiver can
    # deduplicate it.
    keys_by_execution: dict[str, set[str]] = {}
    for call in slow_calls:
        keys_by_execution.setdefault(call.body["e"], set()).add(call.headers["Idempotency-Key"])
    assert keys_by_execution == {e: {f"{e}:slow:1:0"} for e in ids}
    return Counter(call.body["e"] for call in slow_calls)


def settle_all(admin: Api, ids: list[str], timeout: float) -> None:
    for execution_id in ids:
        admin.settle(execution_id, timeout=timeout)


def test_a_worker_process_killed_mid_step_has_its_step_rerun(
    engine_stack: Stack, admin: Api, http_sink: HttpSink, db: Any
) -> None:
    ids, slow_path, after_path = start_batch(admin, http_sink, count=12, delay=1.0)
    kills = 0
    for _ in range(2):
        # Wait for a slow call in flight, then kill -9 every pool process.
        seen = len(http_sink.calls(slow_path))
        wait_for(lambda seen=seen: len(http_sink.calls(slow_path)) > seen, timeout=30)
        time.sleep(0.3)
        for pid in engine_stack.children("worker"):
            os.kill(pid, signal.SIGKILL)
            kills += 1
    settle_all(admin, ids, timeout=90)
    slow_calls = assert_each_ran_once(admin, db, http_sink, ids, slow_path, after_path)
    assert kills >= 2
    # At least one step was cut mid-call and run again by another process.
    assert max(slow_calls.values()) >= 2, slow_calls
    engine_stack.check_alive()


def test_messages_lost_by_the_broker_are_relayed_again(
    engine_stack: Stack, admin: Api, http_sink: HttpSink, db: Any
) -> None:
    engine_stack.stop("worker")
    try:
        ids, slow_path, after_path = start_batch(admin, http_sink, count=4, delay=0.1)
        broker = redis.Redis.from_url(BROKER_URL)
        assert broker.llen("workflows") >= 4
        broker.flushdb()  # a broker restarted without persistence
        broker.close()
    finally:
        engine_stack.start_worker()
    settle_all(admin, ids, timeout=60)  # the relay re-publishes once the grace period passed
    assert_each_ran_once(admin, db, http_sink, ids, slow_path, after_path)


def test_the_messages_a_killed_worker_had_taken_are_relayed(
    engine_stack: Stack, admin: Api, http_sink: HttpSink, db: Any
) -> None:
    """kill -9 of the whole worker (main process and pool) while it runs two slow calls
    and holds the other executions' messages: they were in its memory only (no ack
    emulation), and their tickets are published again by the relay."""
    from tests.e2e.engine.test_waiting import kill_worker, restart_worker

    ids, slow_path, after_path = start_batch(admin, http_sink, count=6, delay=2.0)
    wait_for(lambda: len(http_sink.calls(slow_path)) >= 2, timeout=30)
    time.sleep(0.3)
    try:
        kill_worker(engine_stack)
        broker = redis.Redis.from_url(BROKER_URL)
        try:
            assert not broker.exists("unacked")  # nothing the worker took is kept in Redis
        finally:
            broker.close()
    finally:
        restart_worker(engine_stack)
    # Unclaimed tickets come back 15 s after their commit, claimed ones after the slow
    # step's 8 s limit + 15 s.
    settle_all(admin, ids, timeout=120)
    slow_calls = assert_each_ran_once(admin, db, http_sink, ids, slow_path, after_path)
    assert max(slow_calls.values()) >= 2, slow_calls  # a call cut by the kill, sent again
    engine_stack.check_alive()


def test_dropped_database_connections_are_recovered(
    engine_stack: Stack, admin: Api, http_sink: HttpSink, db: Any, engine_database_url: str
) -> None:
    from sqlalchemy.engine import make_url

    ids, slow_path, after_path = start_batch(admin, http_sink, count=6, delay=0.5)
    wait_for(lambda: http_sink.calls(slow_path), timeout=30)
    name = make_url(engine_database_url).database
    with db.connect() as connection:
        dropped = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        ).scalar()
    assert dropped and dropped > 0  # a database restart, as the processes see it
    settle_all(admin, ids, timeout=90)
    assert_each_ran_once(admin, db, http_sink, ids, slow_path, after_path)


def test_executions_go_on_while_the_api_restarts(
    engine_stack: Stack, admin: Api, http_sink: HttpSink, db: Any
) -> None:
    ids, slow_path, after_path = start_batch(admin, http_sink, count=4, delay=0.3)
    engine_stack.stop("api")

    def finished() -> bool:
        with db.connect() as connection:
            statuses = (
                connection.execute(
                    text("SELECT status FROM executions WHERE id::text = ANY(:ids)"), {"ids": ids}
                )
                .scalars()
                .all()
            )
        return all(status == "completed" for status in statuses)

    wait_for(finished, timeout=60)
    engine_stack.start_api()
    engine_stack.wait_ready()
    assert_each_ran_once(admin, db, http_sink, ids, slow_path, after_path)


def test_delayed_retries_wait_for_beat_and_fire_once_it_is_back(
    engine_stack: Stack, admin: Api, http_sink: HttpSink
) -> None:
    tag = secrets.token_hex(3)
    path = f"/flaky-{tag}"
    http_sink.respond(path, status=503, times=1)
    admin.deploy(
        {
            "workflow_id": f"beat_{tag}",
            "version": "1",
            "name": "Retry after beat",
            "definition": {
                "trigger": {"type": "event", "event": f"beat.{tag}"},
                "steps": [
                    {
                        "id": "call",
                        "type": "execute",
                        "execute": [{"type": "http_request", "url": f"{http_sink.url}{path}"}],
                        "retry": {"max_attempts": 2, "backoff": "fixed", "initial_interval": "1s"},
                    }
                ],
            },
        }
    )
    engine_stack.stop("beat")
    try:
        [execution_id] = admin.send(f"beat.{tag}", {})["execution_ids"]
        wait_for(lambda: len(http_sink.calls(path)) == 1, timeout=30)
        time.sleep(3)  # the backoff is long over, but nothing fires due-times without beat
        assert admin.execution(execution_id)["status"] == "running"
        attempts = [(s["attempt"], s["status"]) for s in admin.trace(execution_id)["steps"]]
        assert attempts == [(1, "failed"), (2, "pending")]
    finally:
        engine_stack.start_beat()
    body = admin.settle(execution_id, timeout=30)
    assert (body["status"], body["result"]) == ("completed", "executed")
    assert len(http_sink.calls(path)) == 2
