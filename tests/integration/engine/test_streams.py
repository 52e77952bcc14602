"""Live execution updates over SSE, against a real HTTP server on the app, with steps
driven in process one ticket at a time and the feed's trigger and LISTEN in Postgres."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from werkzeug.serving import make_server

from tests.integration.engine.conftest import create_workflow, send_event, trace
from tests.support import Caller, register, unique

API = "/api/v1"
HEARTBEAT = 0.3


@pytest.fixture(scope="module")
def stream_app(engine_settings: dict[str, Any]) -> Iterator[Any]:
    from api.app import create_app
    from api.streams.feed import stop_feeds

    application = create_app(
        {
            **engine_settings,
            "stream_heartbeat_seconds": HEARTBEAT,
            "stream_max_per_principal": 2,
        }
    )
    yield application
    stop_feeds()
    application.extensions["iw"].dispose()


@pytest.fixture(scope="module")
def server(stream_app: Any) -> Iterator[str]:
    http = make_server("127.0.0.1", 0, stream_app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def owner(stream_app: Any) -> Caller:
    return register(stream_app.test_client())


@dataclass
class Event:
    type: str
    data: dict[str, Any]
    id: str | None


@dataclass
class SseReader:
    """Reads one stream on a thread of its own, until `end`, the server closing, or stop()."""

    url: str
    headers: dict[str, str]
    events: list[Event] = field(default_factory=list)
    heartbeats: int = 0
    status: int | None = None
    error_body: Any = None
    finished: bool = False
    _stopping: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self) -> SseReader:
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.wait(lambda: self.status is not None, "the response's status")
        return self

    def _read(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=30) as response:
                self._set(status=response.status_code)
                if response.status_code != 200:
                    self._set(error_body=json.loads(response.read()))
                    return
                self._parse(response.iter_lines())
        finally:
            self._set(finished=True)

    def _parse(self, lines: Iterator[str]) -> None:
        fields_: dict[str, str] = {}
        for line in lines:
            if self._stopping.is_set():
                return
            if line.startswith(":"):
                self._set(heartbeats=self.heartbeats + 1)
            elif line == "":
                if "event" in fields_:
                    event = Event(fields_["event"], json.loads(fields_["data"]), fields_.get("id"))
                    with self._changed:
                        self.events.append(event)
                        self._changed.notify_all()
                fields_ = {}
            else:
                name, _, value = line.partition(": ")
                fields_[name] = value

    def _set(self, **values: Any) -> None:
        with self._changed:
            for name, value in values.items():
                setattr(self, name, value)
            self._changed.notify_all()

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}; events: {self.events}"
                self._changed.wait(left)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT * 10)
            assert not self._thread.is_alive()

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == kind]

    def last_id(self) -> str | None:
        ids = [e.id for e in self.events if e.id is not None]
        return ids[-1] if ids else None


def _three_steps(caller: Caller) -> str:
    event = unique("stream.test")
    create_workflow(
        caller,
        {
            "workflow_id": unique("wf"),
            "version": "1",
            "name": "Three steps",
            "definition": {
                "trigger": {"type": "event", "event": event},
                "steps": [
                    {
                        "id": "a",
                        "type": "execute",
                        "execute": [{"type": "set", "values": {"x": 1}}],
                        "next": "b",
                    },
                    {
                        "id": "b",
                        "type": "execute",
                        "execute": [{"type": "set", "values": {"y": 2}}],
                        "next": "c",
                    },
                    {"id": "c", "type": "action", "action": {"type": "allow"}},
                ],
            },
        },
    )
    started = send_event(caller, event, {})
    assert len(started["execution_ids"]) == 1, started
    return str(started["execution_ids"][0])


def _step_once(rt: Any, execution_id: str) -> bool:
    """Run the oldest ticket of this execution; False when it has none left."""
    from models.execution import DispatchOutbox
    from tasks.dispatch import Ticket
    from tasks.steprun import run_step_message

    with rt.session_factory() as session:
        row = session.scalars(
            select(DispatchOutbox)
            .where(DispatchOutbox.execution_id == execution_id)
            .order_by(DispatchOutbox.id)
            .limit(1)
        ).first()
        ticket = Ticket.from_row(row) if row is not None else None
    if ticket is None:
        return False
    run_step_message(rt, Ticket.parse(ticket.message()))
    return True


def _events_url(server: str, execution_id: str) -> str:
    return f"{server}{API}/executions/{execution_id}/events"


def _version_of(event: Event) -> int:
    return int(event.data["version"])


def test_a_stream_sees_every_transition_in_order_and_ends_when_the_execution_finishes(
    server: str, owner: Caller, rt: Any
) -> None:
    execution_id = _three_steps(owner)
    reader = SseReader(_events_url(server, execution_id), owner.headers).start()
    assert reader.status == 200
    reader.wait(lambda: bool(reader.of("execution")), "the starting state")

    while _step_once(rt, execution_id):
        committed = owner.get(f"{API}/executions/{execution_id}").json
        reader.wait(
            lambda committed=committed: (
                bool(reader.of("execution"))
                and reader.of("execution")[-1].data["status"] == committed["status"]
                and reader.of("step")
                and {s.data["status"] for s in reader.of("step")} >= {"completed"}
            ),
            f"the change to {committed['status']}",
        )
    reader.wait(lambda: reader.finished, "the server to end the stream")

    versions = [_version_of(e) for e in reader.of("execution")]
    assert versions == list(range(versions[0], versions[0] + len(versions)))
    assert len(versions) >= 3
    assert reader.of("execution")[-1].data["status"] == "completed"
    assert [e.type for e in reader.events][-1] == "end"
    assert reader.events[-1].data["status"] == "completed"
    done = [s.data["step_id"] for s in reader.of("step") if s.data["status"] == "completed"]
    assert done == ["a", "b", "c"]
    steps = trace(owner, execution_id)["steps"]
    assert {(s.data["id"], s.data["status"]) for s in reader.of("step")} >= {
        (s["id"], s["status"]) for s in steps
    }


def test_a_resumed_stream_loses_nothing_committed_while_it_was_away(
    server: str, owner: Caller, rt: Any
) -> None:
    execution_id = _three_steps(owner)
    first = SseReader(_events_url(server, execution_id), owner.headers).start()
    assert _step_once(rt, execution_id)
    first.wait(lambda: any(s.data["step_id"] == "a" for s in first.of("step")), "the first step")
    first.wait(lambda: first.last_id() is not None, "an event id")
    first.stop()  # the connection drops
    resume_from = first.last_id()
    assert resume_from is not None
    while _step_once(rt, execution_id):
        pass  # the rest of the execution commits while nobody listens

    second = SseReader(
        _events_url(server, execution_id), {**owner.headers, "Last-Event-ID": resume_from}
    ).start()
    second.wait(lambda: second.finished, "the resumed stream to end")

    seen = {(e.data["id"], e.data["status"]) for e in first.of("step") + second.of("step")}
    committed = {(s["id"], s["status"]) for s in trace(owner, execution_id)["steps"]}
    assert committed <= seen
    assert second.of("execution")[-1].data["status"] == "completed"
    assert _version_of(second.of("execution")[0]) > int(resume_from.split(".")[0])
    assert second.events[-1].type == "end"


def test_the_feed_reconnects_and_a_stream_rereads_what_it_may_have_missed(
    server: str, owner: Caller, rt: Any, stream_app: Any
) -> None:
    execution_id = _three_steps(owner)
    reader = SseReader(_events_url(server, execution_id), owner.headers).start()
    reader.wait(lambda: bool(reader.of("execution")), "the starting state")

    with stream_app.extensions["iw"].session_factory() as session:
        killed = session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'iw-stream-feed' AND datname = current_database()"
            )
        ).all()
    assert killed, "the feed's LISTEN connection was not found"
    while _step_once(rt, execution_id):
        pass
    reader.wait(lambda: reader.finished, "the stream to end after the reconnect")

    assert reader.events[-1].type == "end"
    done = [s.data["step_id"] for s in reader.of("step") if s.data["status"] == "completed"]
    assert done == ["a", "b", "c"]


def test_a_stream_never_shows_another_organizations_executions(
    server: str, owner: Caller, stream_app: Any, rt: Any
) -> None:
    stranger = register(stream_app.test_client())
    mine = SseReader(f"{server}{API}/executions/stream", owner.headers).start()
    theirs = SseReader(f"{server}{API}/executions/stream", stranger.headers).start()
    execution_id = _three_steps(owner)
    while _step_once(rt, execution_id):
        pass
    mine.wait(
        lambda: any(
            e.data["execution_id"] == execution_id and e.data["status"] == "completed"
            for e in mine.of("execution")
        ),
        "the owner's execution to complete",
    )
    theirs.wait(lambda: theirs.heartbeats >= 2, "the stranger's heartbeats")
    peek = SseReader(_events_url(server, execution_id), stranger.headers).start()
    mine.stop()
    theirs.stop()

    assert theirs.events == []
    assert peek.status == 404
    assert peek.error_body["code"] == 404
    versions = [
        _version_of(e) for e in mine.of("execution") if e.data["execution_id"] == execution_id
    ]
    assert versions == sorted(versions) and len(versions) >= 3


def test_the_list_stream_filters_and_resumes_from_its_last_event(
    server: str, owner: Caller, rt: Any
) -> None:
    url = f"{server}{API}/executions/stream?status=completed"
    completed = SseReader(url, owner.headers).start()
    first = _three_steps(owner)
    while _step_once(rt, first):
        pass
    completed.wait(lambda: bool(completed.of("execution")), "the completion")
    completed.stop()
    resume_from = completed.last_id()
    assert resume_from is not None
    second = _three_steps(owner)
    while _step_once(rt, second):
        pass

    resumed = SseReader(url, {**owner.headers, "Last-Event-ID": resume_from}).start()
    resumed.wait(
        lambda: any(e.data["execution_id"] == second for e in resumed.of("execution")),
        "the execution completed while away",
    )
    resumed.stop()

    assert {e.data["status"] for e in completed.of("execution")} == {"completed"}
    assert [e.data["execution_id"] for e in completed.of("execution")] == [first]
    assert all(e.data["status"] == "completed" for e in resumed.of("execution"))


def test_streams_beyond_the_per_principal_limit_are_refused_with_429(
    server: str, owner: Caller
) -> None:
    url = f"{server}{API}/executions/stream"
    held = [SseReader(url, owner.headers).start() for _ in range(2)]
    refused = SseReader(url, owner.headers).start()
    held[0].stop()
    time.sleep(HEARTBEAT * 2)  # the server notices the closed connection at its next write
    accepted = SseReader(url, owner.headers).start()
    accepted.stop()
    held[1].stop()

    assert [reader.status for reader in held] == [200, 200]
    assert refused.status == 429
    assert refused.error_body["code"] == 429
    assert "Too many open streams" in refused.error_body["message"]
    assert accepted.status == 200


def test_bad_cursors_and_filters_are_refused_before_the_stream_starts(
    server: str, owner: Caller
) -> None:
    execution_id = _three_steps(owner)
    bad_id = SseReader(
        _events_url(server, execution_id), {**owner.headers, "Last-Event-ID": "soon"}
    ).start()
    bad_status = SseReader(f"{server}{API}/executions/stream?status=done", owner.headers).start()
    anonymous = SseReader(_events_url(server, execution_id), {}).start()

    assert bad_id.status == 400
    assert "Last-Event-ID" in bad_id.error_body["message"]
    assert bad_status.status == 422
    assert anonymous.status == 401


def test_a_host_that_does_not_serve_streams_redirects_to_the_one_that_does(
    engine_settings: dict[str, Any],
) -> None:
    from api.app import create_app

    application = create_app({**engine_settings, "stream_redirect_url": "http://streams:8081"})
    try:
        caller = register(application.test_client())
        response = caller.get(f"{API}/executions/stream?status=running")
    finally:
        application.extensions["iw"].dispose()

    assert response.status_code == 307
    assert response.headers["Location"] == (
        "http://streams:8081/api/v1/executions/stream?status=running"
    )


def test_a_host_that_may_not_hold_streams_and_names_no_stream_service_refuses(
    engine_settings: dict[str, Any],
) -> None:
    """A sync-worker API without STREAM_REDIRECT_URL answers 503 in the error shape at
    once, instead of holding a worker until gunicorn's timeout kills it."""
    from api.app import create_app

    application = create_app({**engine_settings, "serve_streams": False})
    try:
        caller = register(application.test_client())
        listing = caller.get(f"{API}/executions/stream")
        one = caller.get(f"{API}/executions/{uuid.uuid4()}/events")
    finally:
        application.extensions["iw"].dispose()

    for response in (listing, one):
        assert response.status_code == 503
        assert response.mimetype == "application/json"
        assert "STREAM_REDIRECT_URL" in response.json["message"]


def test_the_console_learns_where_the_streams_are_and_may_connect_there(
    engine_settings: dict[str, Any], stream_app: Any
) -> None:
    from api.app import create_app

    redirecting = create_app({**engine_settings, "stream_redirect_url": "http://streams:8081"})
    try:
        client = redirecting.test_client()
        caller = register(client)
        answer = caller.get(f"{API}/streams/endpoint")
        anonymous = client.get(f"{API}/streams/endpoint")
        # The console's page (or, without a build, its 404): read and closed.
        with client.get("/") as page:
            page_csp = page.headers["Content-Security-Policy"]
    finally:
        redirecting.extensions["iw"].dispose()
    in_place = register(stream_app.test_client()).get(f"{API}/streams/endpoint")
    with stream_app.test_client().get("/") as same_origin_page:
        same_origin_csp = same_origin_page.headers["Content-Security-Policy"]

    assert answer.status_code == 200
    assert answer.get_json() == {"base_url": "http://streams:8081"}
    assert anonymous.status_code == 401
    assert anonymous.get_json()["code"] == 401
    # No stream host of its own: the console opens the streams on its origin.
    assert in_place.get_json() == {"base_url": None}
    assert "connect-src 'self' http://streams:8081;" in page_csp
    assert "connect-src 'self';" in same_origin_csp


def test_the_stream_service_lets_the_consoles_origin_open_and_resume_a_stream(
    engine_settings: dict[str, Any],
) -> None:
    from api.app import create_app

    application = create_app({**engine_settings, "cors_origins": ("http://console:8080",)})
    try:
        client = application.test_client()
        caller = register(client)
        url = f"{API}/executions/stream"
        preflight = client.options(
            url,
            headers={
                "Origin": "http://console:8080",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, last-event-id",
            },
        )
        foreign = client.options(
            url, headers={"Origin": "http://evil:8080", "Access-Control-Request-Method": "GET"}
        )
        refused = client.get(url, headers={"Origin": "http://console:8080"})
        opened = client.get(
            url, headers={**caller.headers, "Origin": "http://console:8080"}, buffered=False
        )
        opened_headers = dict(opened.headers)
        opened.close()
    finally:
        application.extensions["iw"].dispose()

    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://console:8080"
    allowed = {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "last-event-id"} <= allowed
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    # Credentials travel in a header, never as cookies: no Allow-Credentials, no `*`.
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in foreign.headers
    # The console reads a refusal's status and message too.
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "http://console:8080"
    assert opened.status_code == 200
    assert opened_headers["Access-Control-Allow-Origin"] == "http://console:8080"
    assert opened_headers["Content-Type"].startswith("text/event-stream")


def test_a_stream_ends_when_the_access_token_that_opened_it_expires(
    engine_settings: dict[str, Any],
) -> None:
    from datetime import timedelta

    from api.app import create_app

    application = create_app(
        {
            **engine_settings,
            "access_token_ttl": timedelta(seconds=2),
            "stream_heartbeat_seconds": 30.0,
        }
    )
    try:
        caller = register(application.test_client())
        response = application.test_client().get(
            f"{API}/executions/stream", headers=caller.headers, buffered=False
        )
        started = time.monotonic()
        body = b"".join(response.response)  # returns once the server ends the stream
        took = time.monotonic() - started
        response.close()
    finally:
        application.extensions["iw"].dispose()

    assert response.status_code == 200
    assert b"event: expired" in body
    assert took < 5  # well before the 30 s heartbeat
