"""POST /events/batch: many events in one request, each answered on its own, in order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.integration.engine.conftest import (
    API,
    create_workflow,
    drive,
    execution,
    send_event,
    set_then_allow,
)
from tests.support import register, unique

BATCH = f"{API}/events/batch"


def send_batch(caller: Any, events: list[Any], status: int = 207) -> dict[str, Any]:
    from api.events.schemas import EventBatchAnswerSchema

    response = caller.post(BATCH, {"events": events})
    assert response.status_code == status, response.json
    # Built JSON-ready rather than dumped through the schema: it must still be its shape.
    schema = EventBatchAnswerSchema()
    assert schema.dump(schema.load(response.json)) == response.json
    return dict(response.json)


def counts(rt: Any, organization_id: str) -> tuple[int, int, int]:
    """(events, executions, tickets) of one organization."""
    from models.execution import DispatchOutbox, Event, Execution

    with rt.session_factory() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.organization_id == organization_id)
            )
            for model in (Event, Execution, DispatchOutbox)
        )


def test_each_event_is_answered_in_order_and_a_bad_one_rejects_no_other(
    admin: Any, rt: Any
) -> None:
    event = unique("batch.ok")
    workflow = create_workflow(admin, set_then_allow(event))
    answer = send_batch(
        admin,
        [
            {"event_type": event, "payload": {"n": 1}},
            {"payload": {"n": 2}},  # no event_type
            {"event_type": unique("batch.unrouted"), "payload": {}},
            7,  # not an object
            {"event_type": event, "payload": {"text": "a\u0000b"}},  # Postgres cannot store it
            {"event_type": event, "payload": {"n": 6}},
        ],
    )

    assert [r["index"] for r in answer["results"]] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in answer["results"]] == [202, 422, 202, 422, 422, 202]
    assert (answer["accepted"], answer["rejected"]) == (3, 3)
    first, missing, unrouted, not_object, nul, last = answer["results"]
    assert missing["error"]["code"] == 422
    assert "event_type" in missing["error"]["errors"]
    assert not_object["error"]["status"] == "Unprocessable Entity"
    assert nul["error"]["errors"] == {"payload.text": ["must not contain NUL characters (\\u0000)"]}
    assert unrouted["event"]["execution_ids"] == []
    for accepted in (first, last):
        assert accepted["repeated"] is False
        assert accepted["event"]["triggered_workflows"] == [workflow["workflow_id"]]
    assert counts(rt, admin.organization_id) == (3, 2, 2)

    drive(rt)
    for accepted, n in ((first, 1), (last, 6)):
        [execution_id] = accepted["event"]["execution_ids"]
        body = execution(admin, execution_id)
        assert body["status"] == "completed"
        assert body["trigger_payload"] == {"n": n}
        assert body["context"]["event"]["id"] == accepted["event"]["id"]
    stored = admin.get(f"{API}/events/{last['event']['id']}").json
    assert stored["payload"] == {"n": 6}


def test_a_repeated_key_returns_the_first_answer_inside_a_batch_and_across_batches(
    admin: Any, rt: Any
) -> None:
    event = unique("batch.key")
    create_workflow(admin, set_then_allow(event))
    single = send_event(admin, event, {"n": 0}, idempotency_key="k-single")

    first = send_batch(
        admin,
        [
            {"event_type": event, "payload": {"n": 1}, "idempotency_key": "k-1"},
            {"event_type": event, "payload": {"n": 2}, "idempotency_key": "k-1"},
            {"event_type": event, "payload": {"n": 3}, "idempotency_key": "k-single"},
            {"event_type": event, "payload": {"n": 4}, "idempotency_key": "k-2"},
        ],
    )["results"]
    assert [r["status"] for r in first] == [202] * 4
    assert [r["repeated"] for r in first] == [False, True, True, False]
    assert first[1]["event"] == first[0]["event"]
    assert first[2]["event"]["id"] == single["id"]
    assert first[2]["event"]["execution_ids"] == single["execution_ids"]

    again = send_batch(
        admin,
        [
            {"event_type": event, "payload": {"n": 5}, "idempotency_key": "k-2"},
            {"event_type": event, "payload": {"n": 6}, "idempotency_key": "k-1"},
        ],
    )["results"]
    assert [r["repeated"] for r in again] == [True, True]
    assert again[0]["event"]["id"] == first[3]["event"]["id"]
    assert again[1]["event"]["execution_ids"] == first[0]["event"]["execution_ids"]
    # POST /events answers a key first sent in a batch with the batch's answer.
    repeated = send_event(admin, event, {"n": 7}, idempotency_key="k-2")
    assert repeated["id"] == first[3]["event"]["id"]
    # The single event, and k-1 and k-2 once each.
    assert counts(rt, admin.organization_id) == (3, 3, 3)


def test_more_events_than_the_limit_is_a_413_and_writes_nothing(
    admin: Any, app: Any, rt: Any
) -> None:
    limit = app.extensions["iw"].settings.event_batch_max
    event = unique("batch.big")
    create_workflow(admin, set_then_allow(event))

    response = admin.post(BATCH, {"events": [{"event_type": event, "payload": {}}] * (limit + 1)})

    assert response.status_code == 413
    assert response.json["code"] == 413
    assert str(limit) in response.json["message"]
    assert counts(rt, admin.organization_id) == (0, 0, 0)
    assert (
        len(send_batch(admin, [{"event_type": event, "payload": {}}] * limit)["results"]) == limit
    )


def test_an_empty_or_malformed_batch_is_one_422(admin: Any) -> None:
    for body in ({"events": []}, {"events": "x"}, {}, [{"event_type": "a"}]):
        response = admin.post(BATCH, body)
        assert response.status_code == 422, body
        assert response.json["code"] == 422
    with_header = admin.client.post(
        BATCH,
        json={"events": [{"event_type": "a"}]},
        headers={**admin.headers, "Idempotency-Key": "k"},
    )
    assert with_header.status_code == 422
    assert "idempotency_key" in with_header.json["message"]


def test_another_organizations_workflows_are_never_triggered(
    admin: Any, client: Any, rt: Any
) -> None:
    event = unique("batch.tenant")
    other = register(client)
    theirs = create_workflow(other, set_then_allow(event))
    mine = create_workflow(admin, set_then_allow(event))

    answer = send_batch(admin, [{"event_type": event, "payload": {"i": i}} for i in range(3)])

    for result in answer["results"]:
        assert result["event"]["triggered_workflows"] == [mine["workflow_id"]]
    assert counts(rt, other.organization_id) == (0, 0, 0)
    assert counts(rt, admin.organization_id) == (3, 3, 3)
    assert theirs["workflow_id"] != mine["workflow_id"]
    # A key the other organization used is not a repeat here.
    other_answer = send_batch(other, [{"event_type": event, "idempotency_key": "shared"}])
    mine_answer = send_batch(admin, [{"event_type": event, "idempotency_key": "shared"}])
    assert mine_answer["results"][0]["repeated"] is False
    assert mine_answer["results"][0]["event"]["id"] != other_answer["results"][0]["event"]["id"]


def test_an_event_wakes_the_waits_of_its_type(admin: Any, rt: Any) -> None:
    start, wake = unique("batch.start"), unique("batch.wake")
    wait = {"event": wake, "timeout": "1h"}
    create_workflow(
        admin,
        {
            "workflow_id": unique("wf"),
            "version": "1",
            "name": "Waits",
            "definition": {
                "trigger": {"type": "event", "event": start},
                "steps": [
                    {"id": "wait", "type": "wait", "wait": wait, "next": "done"},
                    {"id": "done", "type": "action", "action": {"type": "allow"}},
                ],
            },
        },
    )
    [execution_id] = send_event(admin, start, {})["execution_ids"]
    drive(rt)
    assert execution(admin, execution_id)["status"] == "waiting"

    send_batch(admin, [{"event_type": unique("batch.other")}, {"event_type": wake}])
    drive(rt)

    assert execution(admin, execution_id)["status"] == "completed"


@pytest.fixture
def limited(engine_settings: dict[str, Any], request: Any) -> Iterator[Any]:
    from api.app import create_app

    limit = getattr(request, "param", "5/minute")
    application = create_app({**engine_settings, "rate_limit_default": limit})
    yield application.test_client()
    application.extensions["iw"].dispose()


def test_the_rate_limit_is_charged_per_event(limited: Any, rt: Any) -> None:
    caller = register(limited)
    event = unique("batch.limited")

    first = send_batch(caller, [{"event_type": event, "payload": {"i": i}} for i in range(3)])
    second = limited.post(
        BATCH,
        json={"events": [{"event_type": event}, {"event_type": event}, {"event_type": event}]},
        headers=caller.headers,
    )

    assert [r["status"] for r in first["results"]] == [202] * 3
    assert second.status_code == 207
    assert [r["status"] for r in second.json["results"]] == [202, 202, 429]
    rejected = second.json["results"][2]["error"]
    assert rejected["code"] == 429
    assert rejected["status"] == "Too Many Requests"
    assert int(second.headers["Retry-After"]) >= 1
    assert second.json["retry_after"] == int(second.headers["Retry-After"])
    # Invalid events are not charged; past the limit, every valid one is refused.
    third = send_batch(caller, [{"event_type": event}, {"payload": {}}])
    assert [r["status"] for r in third["results"]] == [429, 422]
    assert counts(rt, caller.organization_id)[0] == 5


def test_a_key_stored_by_a_concurrent_request_answers_that_event_and_the_rest_still_land(
    admin: Any, app: Any, rt: Any
) -> None:
    """The write of a batch whose key was stored between its key lookup and its write
    (what a concurrent request with that key does) fails whole; each event is then
    written on its own: the repeated one answers as the first, the others land."""
    from api.auth.principal import current_principal
    from api.events import batch

    event = unique("batch.race")
    create_workflow(admin, set_then_allow(event))
    taken = send_event(admin, event, {"n": 0}, idempotency_key="raced")
    answers: list[Any] = [None, None]
    with app.test_request_context(headers=admin.headers):
        # Past _accept's lookup: as if "raced" had been stored since.
        batch._store(
            current_principal(),
            [
                (0, {"event_type": event, "payload": {"n": 1}}),
                (1, {"event_type": event, "payload": {"n": 2}, "idempotency_key": "raced"}),
            ],
            answers,
        )

    fresh, raced = answers
    assert (fresh["status"], fresh["repeated"]) == (202, False)
    assert (raced["status"], raced["repeated"]) == (202, True)
    assert str(raced["event"]["id"]) == taken["id"]
    assert raced["event"]["execution_ids"] == taken["execution_ids"]
    assert counts(rt, admin.organization_id) == (2, 2, 2)


@pytest.mark.parametrize("limited", ["2/second;3/minute"], indirect=True)
def test_every_window_of_the_limit_is_charged_and_the_tightest_decides(
    limited: Any, rt: Any
) -> None:
    caller = register(limited)
    events = [{"event_type": unique("batch.windows")} for _ in range(5)]

    first = send_batch(caller, events)
    time.sleep(1.1)  # the one-second window is empty again, the minute's holds 2 of 3
    second = send_batch(caller, events)

    assert [r["status"] for r in first["results"]] == [202, 202, 429, 429, 429]
    assert first["retry_after"] == 1
    assert [r["status"] for r in second["results"]] == [202, 429, 429, 429, 429]
    assert second["retry_after"] == 60
    assert counts(rt, caller.organization_id)[0] == 3
