"""Outages of Redis and Postgres under a stream of events, on private servers.

The stack (gunicorn, Celery worker, beat) runs against a redis-server and a
Postgres cluster of this test's own, so they can be killed: Redis with SIGKILL
(no persistence: its queue is lost), Postgres with an immediate shutdown (every
connection dropped, crash recovery at the restart). A client sends events the
way the README says to: each with its own Idempotency-Key, retried with the
same key on a 503. Afterwards:

* the API answered nothing but 202 and 503 (each 503 with Retry-After);
* it answered 202 again within 5 s of each restart;
* every accepted execution completed, and no other execution exists;
* the workflow's webhook was received for each execution, under distinct
  Idempotency-Keys as many as the accepted executions.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from models.migration import create_database_if_missing, upgrade_to_head
from tests.e2e.servers import PrivatePostgres, PrivateRedis, can_run_private_servers
from tests.e2e.stack import Stack, wait_until
from tests.integration.engine.sinks import HttpSink

pytestmark = pytest.mark.e2e

API = "/api/v1"
EVENT = "outage.tick"
OUTAGE_SECONDS = 3.0
BACK_WITHIN_SECONDS = 5.0


@dataclass
class Answer:
    at: float  # monotonic time the answer arrived
    status: int  # 0: no HTTP answer (connection refused, timeout)
    detail: str = ""


@dataclass
class EventStream:
    """Sends one event after another; a 503 (or no answer) is retried with the same key."""

    client: httpx.Client
    headers: dict[str, str]
    answers: list[Answer] = field(default_factory=list)
    accepted: dict[str, list[str]] = field(default_factory=dict)  # key -> execution ids
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            key = f"tick-{number}-{uuid.uuid4().hex[:8]}"
            while not self._send(key, number):
                time.sleep(0.1)  # shorter than Retry-After, to see the first 202 early
            time.sleep(0.05)

    def _send(self, key: str, number: int) -> bool:
        """True once the event is accepted (or the stream stops)."""
        body = {"event_type": EVENT, "payload": {"n": number}}
        try:
            response = self.client.post(
                f"{API}/events", json=body, headers={**self.headers, "Idempotency-Key": key}
            )
        except httpx.TransportError as exc:
            self.answers.append(Answer(time.monotonic(), 0, repr(exc)))
            return self.stopping.is_set()
        detail = "" if response.status_code == 202 else response.text[:300]
        if response.status_code == 503 and not response.headers.get("Retry-After"):
            detail = "503 without Retry-After: " + detail
        self.answers.append(Answer(time.monotonic(), response.status_code, detail))
        if response.status_code == 202:
            self.accepted[key] = list(response.json()["execution_ids"])
            return True
        return self.stopping.is_set()

    def first_accepted_after(self, moment: float, timeout: float) -> float:
        """Seconds from `moment` to the first 202 that arrived after it."""

        def accepted() -> float | None:
            times = [a.at for a in list(self.answers) if a.status == 202 and a.at >= moment]
            return min(times) - moment if times else None

        found = wait_until(accepted, timeout, interval=0.05, what="a 202 after the restart")
        return float(found)


@pytest.fixture
def private_stack(
    tmp_path: Path,
) -> Iterator[tuple[Stack, PrivateRedis, PrivatePostgres, HttpSink]]:
    reason = can_run_private_servers()
    if reason:
        pytest.skip(reason)
    sink = HttpSink().start()
    private_redis = PrivateRedis(tmp_path)
    postgres = PrivatePostgres(tmp_path)
    stack: Stack | None = None
    try:
        private_redis.start()
        postgres.init()
        postgres.start()
        database_url = postgres.url("iw_outage")
        create_database_if_missing(database_url)
        upgrade_to_head(database_url)
        stack = Stack(
            database_url=database_url,
            redis_url=private_redis.url(0),
            broker_url=private_redis.url(1),
            workdir=tmp_path,
            extra_env={
                "JOB_INTERVAL_OUTBOX_RELAY": "1s",
                "JOB_INTERVAL_STUCK_SWEEPER": "3s",
                "OUTBOUND_TIMEOUT_SECONDS": "5",
                "LOG_LEVEL": "WARNING",
            },
        )
        stack.start_api()
        stack.start_worker()
        stack.start_beat()
        stack.wait_ready()
        stack.wait_worker()
        yield stack, private_redis, postgres, sink
    finally:
        if stack is not None:
            stack.stop()
        postgres.remove()
        private_redis.stop()
        sink.stop()


def _workflow(sink_url: str) -> dict[str, Any]:
    return {
        "workflow_id": "outage-tick",
        "version": "1",
        "name": "A step in Postgres, a webhook, an allow",
        "enabled": True,
        "definition": {
            "trigger": {"type": "event", "event": EVENT},
            "steps": [
                {
                    "id": "note",
                    "type": "execute",
                    "execute": [{"type": "set", "values": {"seen": True}}],
                    "next": "call",
                },
                {
                    "id": "call",
                    "type": "execute",
                    "execute": [{"type": "webhook", "url": f"{sink_url}/effect"}],
                    # A step with effects that met Postgres down after its claim is
                    # taken over once its limit (+15 s) passed: 5 min by default.
                    "timeout": "5s",
                    "next": "done",
                },
                {"id": "done", "type": "action", "action": {"type": "allow"}},
            ],
        },
    }


def _login(client: httpx.Client) -> dict[str, str]:
    user = {"username": "outage", "email": "outage@example.com", "password": "a-long-password"}
    assert client.post(f"{API}/auth/register", json=user).status_code == 201
    credentials = {"username": "outage", "password": user["password"]}
    login = client.post(f"{API}/auth/login", json=credentials)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_redis_and_postgres_restarts_lose_no_event_and_repeat_no_effect(
    private_stack: tuple[Stack, PrivateRedis, PrivatePostgres, HttpSink],
    capsys: Any,
) -> None:
    stack, private_redis, postgres, sink = private_stack
    client = httpx.Client(base_url=stack.api_url, timeout=20)
    headers = _login(client)
    deployed = client.post(f"{API}/workflows", json=_workflow(sink.url), headers=headers)
    assert deployed.status_code == 201, deployed.text

    stream = EventStream(client, headers)
    sender = threading.Thread(target=stream.run, name="event-stream", daemon=True)
    sender.start()
    back_after: dict[str, float] = {}
    try:
        time.sleep(2)
        private_redis.kill()
        time.sleep(OUTAGE_SECONDS)
        private_redis.start()
        restarted = time.monotonic()
        back_after["redis"] = stream.first_accepted_after(restarted, BACK_WITHIN_SECONDS + 5)

        time.sleep(2)
        postgres.stop("immediate")
        time.sleep(OUTAGE_SECONDS)
        postgres.start()
        restarted = time.monotonic()
        back_after["postgres"] = stream.first_accepted_after(restarted, BACK_WITHIN_SECONDS + 5)
        time.sleep(2)
    finally:
        stream.stopping.set()
        sender.join(timeout=30)
        client.close()
    answered = Counter(answer.status for answer in stream.answers)
    with capsys.disabled():
        print(f"\noutage test: restart -> first 202 (s): {back_after}; answers: {dict(answered)}")

    unexpected = [a for a in stream.answers if a.status not in (202, 503) or "without" in a.detail]
    assert not unexpected, unexpected[:5]
    # A request that met Redis down after the rate limit's check may be answered 202
    # once it is back; one outage or the other is always seen.
    assert answered[503] >= 1, answered
    assert all(seconds <= BACK_WITHIN_SECONDS for seconds in back_after.values()), back_after

    accepted = {execution for ids in stream.accepted.values() for execution in ids}
    assert len(accepted) == len(stream.accepted) >= 20  # one execution per event
    db_engine = create_engine(stack.database_url)
    try:

        def statuses() -> dict[str, str]:
            with db_engine.connect() as connection:
                rows = connection.execute(text("SELECT id::text, status FROM executions")).all()
            return {row[0]: row[1] for row in rows}

        def all_finished() -> bool:
            return set(statuses().values()) <= {"completed", "failed", "cancelled"}

        try:
            wait_until(all_finished, 90, interval=0.5, what="every execution to finish")
        except TimeoutError:
            counts = Counter(statuses().values())
            logs = "\n".join(f"--- {name}\n{stack.log(name)}" for name in ("worker", "beat"))
            raise AssertionError(f"executions not finished: {counts}\n{logs}") from None
        final = statuses()
    finally:
        db_engine.dispose()
    assert set(final) == accepted  # nothing started twice, nothing accepted was lost
    assert set(final.values()) == {"completed"}

    keys = {r.headers.get("Idempotency-Key") for r in sink.received if r.path == "/effect"}
    assert len(keys) == len(accepted)
    assert {key.split(":", 1)[0] for key in keys if key} == accepted
