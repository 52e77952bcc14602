"""Events start the workflows whose trigger matches, once per idempotency key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.engine.conftest import (
    API,
    create_workflow,
    drive,
    execution,
    path,
    send_event,
    trace,
)
from tests.support import recorded_statements, register, unique


def order_workflow(event: str = "order.created", **trigger: Any) -> dict[str, Any]:
    return {
        "workflow_id": unique("wf"),
        "version": "1.0.0",
        "name": "Order check",
        "definition": {
            "trigger": {"type": "event", "event": event, **trigger},
            "steps": [
                {
                    "id": "check_total",
                    "type": "condition",
                    "condition": {"field": "order.total", "operator": "gt", "value": 100},
                    "on_true": "block_order",
                    "on_false": "allow_order",
                },
                {
                    "id": "block_order",
                    "type": "action",
                    "action": {"type": "block", "reason": "Too big"},
                },
                {"id": "allow_order", "type": "action", "action": {"type": "allow"}},
            ],
        },
    }


def test_an_event_runs_the_matching_workflow_to_completion(admin: Any, rt: Any) -> None:
    workflow = create_workflow(admin, order_workflow())
    accepted = send_event(admin, "order.created", {"order": {"id": "o-1", "total": 500}})
    assert accepted["triggered_workflows"] == [workflow["workflow_id"]]
    [execution_id] = accepted["execution_ids"]
    assert execution(admin, execution_id)["status"] == "pending"

    drive(rt)

    body = execution(admin, execution_id)
    assert body["status"] == "completed"
    assert body["result"] == "blocked"
    assert body["workflow_version"] == "1.0.0"
    assert path(trace(admin, execution_id)) == ["check_total", "block_order"]


def test_glob_triggers_and_payload_filters_select_workflows(admin: Any, rt: Any) -> None:
    glob = create_workflow(admin, order_workflow("shipment.*"))
    filtered = create_workflow(
        admin,
        order_workflow(
            "shipment.sent", filter={"field": "carrier", "operator": "eq", "value": "ups"}
        ),
    )
    ups = send_event(admin, "shipment.sent", {"carrier": "ups", "order": {"total": 1}})
    assert sorted(ups["triggered_workflows"]) == sorted(
        [glob["workflow_id"], filtered["workflow_id"]]
    )
    dhl = send_event(admin, "shipment.sent", {"carrier": "dhl", "order": {"total": 1}})
    assert dhl["triggered_workflows"] == [glob["workflow_id"]]
    none = send_event(admin, "invoice.sent", {})
    assert none["triggered_workflows"] == []
    assert none["execution_ids"] == []
    drive(rt)


def test_disabled_workflows_are_not_triggered(admin: Any) -> None:
    create_workflow(admin, order_workflow("disabled.thing"), enabled=False)
    assert send_event(admin, "disabled.thing", {})["execution_ids"] == []


def test_the_same_idempotency_key_returns_the_first_answer(admin: Any, rt: Any) -> None:
    create_workflow(admin, order_workflow("refund.requested"))
    first = send_event(admin, "refund.requested", {"order": {"total": 1}}, idempotency_key="k-1")
    again = send_event(admin, "refund.requested", {"order": {"total": 2}}, idempotency_key="k-1")
    assert again == first
    header = admin.client.post(
        f"{API}/events",
        json={"event_type": "refund.requested", "payload": {}},
        headers={**admin.headers, "Idempotency-Key": "k-1"},
    )
    assert header.status_code == 202
    assert header.json["id"] == first["id"]
    listed = admin.get(
        f"{API}/executions", query_string={"workflow_id": first["triggered_workflows"][0]}
    )
    assert listed.json["total"] == 1
    drive(rt)


def test_bad_events_are_refused_with_4xx(admin: Any, app: Any) -> None:
    missing_type = admin.post(f"{API}/events", {"payload": {}})
    assert missing_type.status_code == 422
    assert missing_type.json["code"] == 422
    not_object = admin.post(f"{API}/events", {"event_type": "x", "payload": [1, 2]})
    assert not_object.status_code == 422
    assert not_object.json["code"] == 422
    not_json = admin.client.post(
        f"{API}/events", data="nope", headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert 400 <= not_json.status_code < 500
    too_big = admin.post(
        f"{API}/events",
        {"event_type": "x", "payload": {"blob": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)}},
    )
    assert too_big.status_code == 413
    assert too_big.json["code"] == 413


def test_events_are_listed_and_read_within_the_organization(admin: Any, client: Any) -> None:
    from tests.support import register

    sent = send_event(admin, "audit.ping", {"n": 1})
    listed = admin.get(f"{API}/events", query_string={"event_type": "audit.ping"})
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json["events"]] == [sent["id"]]
    assert admin.get(f"{API}/events/{sent['id']}").json["payload"] == {"n": 1}
    stranger = register(client)
    assert stranger.get(f"{API}/events/{sent['id']}").status_code == 404


def _prepared_on_api_connections(app: Any) -> set[str]:
    """On the connections of both pools (the requests here run one at a time, so each
    pool has one connection, the one they used)."""
    names: set[str] = set()
    services = app.extensions["iw"]
    for db_engine in (services.db_engine, services.autocommit_engine):
        with db_engine.connect() as connection:
            sql = "SELECT name FROM pg_prepared_statements"
            names.update(connection.exec_driver_sql(sql).scalars())
    return names


def test_an_event_and_its_caller_are_read_with_prepared_statements(admin: Any, app: Any) -> None:
    create_workflow(admin, order_workflow("order.prepared"))

    accepted = send_event(admin, "order.prepared", {"order": {"id": "o-p", "total": 50}})

    assert len(accepted["execution_ids"]) == 1
    prepared = _prepared_on_api_connections(app)
    assert {"iw_member_standing", "iw_event_routes"} <= prepared


def test_with_prepared_statements_off_events_are_routed_with_plain_sql(
    engine_settings: dict[str, Any], rt: Any
) -> None:
    from api.app import create_app

    plain = create_app({**engine_settings, "db_prepared_statements": False})
    try:
        caller = register(plain.test_client())
        create_workflow(caller, order_workflow("order.plain"))

        accepted = send_event(caller, "order.plain", {"order": {"id": "o-q", "total": 50}})

        [execution_id] = accepted["execution_ids"]
        assert execution(caller, execution_id)["status"] == "pending"
        assert _prepared_on_api_connections(plain) == set()
        drive(rt)
        assert execution(caller, execution_id)["status"] == "completed"
    finally:
        plain.extensions["iw"].dispose()


def test_a_stored_definition_that_no_longer_parses_does_not_stop_other_workflows(
    admin: Any, app: Any
) -> None:
    from sqlalchemy import text

    healthy = create_workflow(admin, order_workflow("order.healthy"))
    broken = create_workflow(admin, order_workflow("order.other"))
    # As if a later release refused what an earlier one stored: its steps no longer parse.
    with app.extensions["iw"].db_engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE workflows SET definition = jsonb_set(definition, '{steps}', '[{}]')"
                " WHERE id = :id"
            ),
            {"id": broken["id"]},
        )

    accepted = send_event(admin, "order.healthy", {"order": {"id": "o-h", "total": 5}})

    assert accepted["triggered_workflows"] == [healthy["workflow_id"]]


@pytest.fixture
def statements_by_engine(app: Any) -> Iterator[dict[str, list[str]]]:
    """The statements each of the API's two pools sends during the test."""
    services = app.extensions["iw"]
    with (
        recorded_statements(services.db_engine) as transactional,
        recorded_statements(services.autocommit_engine) as autocommit,
    ):
        yield {"transactional": transactional, "autocommit": autocommit}


def test_an_event_without_open_waits_is_written_without_a_transaction_and_one_with_wakes_them(
    admin: Any, rt: Any, statements_by_engine: dict[str, list[str]]
) -> None:
    reply = f"reply.{unique('e')}"
    waiter = {
        "workflow_id": unique("wf"),
        "version": "1",
        "name": "Waits",
        "definition": {
            "trigger": {"type": "event", "event": f"start.{unique('e')}"},
            "steps": [
                {"id": "wait", "type": "wait", "wait": {"event": reply}, "next": "done"},
                {"id": "done", "type": "action", "action": {"type": "allow"}},
            ],
        },
    }
    create_workflow(admin, waiter)
    create_workflow(admin, order_workflow("order.nowait"))
    sent = statements_by_engine
    sent["transactional"].clear()
    sent["autocommit"].clear()

    [started] = send_event(admin, "order.nowait", {"order": {"id": "o-n", "total": 5}})[
        "execution_ids"
    ]
    # The caller's standing, the routes, and the event's rows: all autocommit.
    assert sent["transactional"] == []
    assert len(sent["autocommit"]) == 3
    [waiting] = send_event(admin, waiter["definition"]["trigger"]["event"], {})["execution_ids"]
    drive(rt)
    assert execution(admin, waiting)["status"] == "waiting"
    assert execution(admin, started)["status"] == "completed"

    sent["transactional"].clear()
    assert send_event(admin, reply, {"answer": 42})["execution_ids"] == []
    # An open wait of this type: the event's rows and the wake-up in one transaction.
    assert any("iw_open_event_waits" in statement for statement in sent["transactional"])
    drive(rt)
    woken = execution(admin, waiting)
    assert (woken["status"], woken["result"]) == ("completed", "allowed")


def test_an_event_takes_one_autocommit_connection_and_returns_it(admin: Any, app: Any) -> None:
    from sqlalchemy import event

    create_workflow(admin, order_workflow("order.onecheckout"))
    engine = app.extensions["iw"].autocommit_engine
    checkouts: list[object] = []

    def count(*args: Any) -> None:
        checkouts.append(args[0])

    event.listen(engine.pool, "checkout", count)
    try:
        accepted = send_event(admin, "order.onecheckout", {"order": {"id": "o-c", "total": 5}})
    finally:
        event.remove(engine.pool, "checkout", count)
    assert len(accepted["execution_ids"]) == 1
    # The caller's standing, the routes and the writes shared one checkout...
    assert len(checkouts) == 1
    # ...which went back to the pool when the answer was ready.
    assert engine.pool.checkedout() == 0
