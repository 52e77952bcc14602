"""The schedules API: CRUD, cron and timezone validation, next runs, isolation and permissions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.workflows.builders import audit_actions, create, wrapped
from tests.support import API, Caller, add_member, register

pytestmark = pytest.mark.integration

SHAPE = {
    "id",
    "workflow_id",
    "workflow_row_id",
    "cron",
    "timezone",
    "payload",
    "enabled",
    "from_trigger",
    "next_run_at",
    "last_run_at",
    "created_at",
    "updated_at",
}


@pytest.fixture
def admin(client: Any) -> Caller:
    return register(client)


@pytest.fixture
def workflow(admin: Caller) -> dict[str, Any]:
    return create(admin, wrapped("nightly_report"))


def schedules_of(workflow: dict[str, Any]) -> str:
    return f"{API}/workflows/{workflow['id']}/schedules"


def add_schedule(caller: Caller, workflow: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = caller.post(schedules_of(workflow), {"cron": "*/5 * * * *", **body})
    assert response.status_code == 201, response.json
    return dict(response.json)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def next_runs(caller: Caller, schedule: dict[str, Any], count: int | None = None) -> list[datetime]:
    query = "" if count is None else f"?count={count}"
    response = caller.get(f"{API}/schedules/{schedule['id']}/next-runs{query}")
    assert response.status_code == 200, response.json
    assert response.json["schedule_id"] == schedule["id"]
    return [moment(run) for run in response.json["next_runs"]]


# --- create -----------------------------------------------------------------


def test_a_schedule_is_created_with_defaults_and_its_first_due_time(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    response = admin.post(schedules_of(workflow), {"cron": "*/5 * * * *"})
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == SHAPE
    assert body["workflow_id"] == "nightly_report"
    assert body["workflow_row_id"] == workflow["id"]
    assert (body["timezone"], body["payload"], body["enabled"]) == ("UTC", {}, True)
    assert (body["from_trigger"], body["last_run_at"]) == (False, None)
    due = moment(body["next_run_at"])
    assert due.utcoffset() == timedelta(0)
    assert before < due <= before + timedelta(minutes=5)
    assert (due.minute % 5, due.second, due.microsecond) == (0, 0, 0)
    assert admin.get(f"{API}/schedules/{body['id']}").json == body


def test_a_schedule_keeps_its_timezone_payload_and_disabled_state(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    body = add_schedule(
        admin,
        workflow,
        cron="0 9 * * 1-5",
        timezone="Europe/Berlin",
        payload={"report": "daily", "recipients": ["ops@example.com"]},
        enabled=False,
    )
    assert (body["cron"], body["timezone"]) == ("0 9 * * 1-5", "Europe/Berlin")
    assert body["payload"] == {"report": "daily", "recipients": ["ops@example.com"]}
    assert (body["enabled"], body["next_run_at"]) == (False, None)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"cron": "not a cron"}, {"cron"}),
        ({"cron": "* * * *"}, {"cron"}),
        ({"cron": "* * * * * * *"}, {"cron"}),
        ({"cron": "61 * * * *"}, {"cron"}),
        ({"cron": "*/0 * * * *"}, {"cron"}),
        ({"cron": "@fortnightly"}, {"cron"}),
        ({"cron": "   "}, {"cron"}),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, {"timezone"}),
        ({"cron": "0 9 * * *", "timezone": ""}, {"timezone"}),
        ({"cron": "bad", "timezone": "Nowhere/Else"}, {"cron", "timezone"}),
        ({}, {"cron"}),
        ({"cron": "* " * 60}, {"cron"}),
        ({"cron": "@daily", "payload": [1, 2]}, {"payload"}),
        ({"cron": "@daily", "enabled": "sometimes"}, {"enabled"}),
        ({"cron": "@daily", "timezone": "X" * 65}, {"timezone"}),
    ],
)
def test_invalid_schedules_are_422_with_the_field_paths(
    admin: Caller, workflow: dict[str, Any], body: dict[str, Any], fields: set[str]
) -> None:
    response = admin.post(schedules_of(workflow), body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == 422
    assert set(response.json["errors"]) == fields
    assert admin.get(f"{API}/schedules").json["total"] == 0


@pytest.mark.parametrize("cron", ["*/5 * * * *", "*/30 * * * * *", "@hourly", "@daily", "@weekly"])
def test_every_cron_form_is_accepted(admin: Caller, workflow: dict[str, Any], cron: str) -> None:
    assert add_schedule(admin, workflow, cron=cron)["cron"] == cron


def test_a_schedule_needs_a_workflow_of_the_organization(
    client: Any, admin: Caller, workflow: dict[str, Any]
) -> None:
    missing = f"{API}/workflows/00000000-0000-0000-0000-000000000000/schedules"
    assert admin.post(missing, {"cron": "@daily"}).status_code == 404
    assert admin.get(missing).status_code == 404
    stranger = register(client)
    response = stranger.post(schedules_of(workflow), {"cron": "@daily"})
    assert response.status_code == 404
    assert response.json["message"] == "Workflow not found"
    assert stranger.get(schedules_of(workflow)).status_code == 404


# --- list -------------------------------------------------------------------


def test_schedules_are_listed_and_filtered(admin: Caller, workflow: dict[str, Any]) -> None:
    other = create(admin, wrapped("order_check"))
    first = add_schedule(admin, workflow, cron="@hourly")
    second = add_schedule(admin, workflow, cron="@daily", enabled=False)
    third = add_schedule(admin, other, cron="@weekly")

    body = admin.get(f"{API}/schedules").json
    assert set(body) == {"schedules", "total", "page", "page_size"}
    assert body["total"] == 3
    assert [row["id"] for row in body["schedules"]] == [third["id"], second["id"], first["id"]]

    def ids(query: str) -> list[str]:
        return [row["id"] for row in admin.get(f"{API}/schedules?{query}").json["schedules"]]

    assert ids("workflow_id=nightly_report") == [second["id"], first["id"]]
    assert ids("workflow_id=order_check&enabled=true") == [third["id"]]
    assert ids("enabled=false") == [second["id"]]
    assert ids("workflow_id=unknown") == []
    assert ids("page=2&page_size=2") == [first["id"]]
    assert admin.get(f"{API}/schedules?page_size=101").status_code == 422
    assert admin.get(f"{API}/schedules?enabled=perhaps").status_code == 422

    per_workflow = admin.get(schedules_of(other)).json
    assert [row["id"] for row in per_workflow["schedules"]] == [third["id"]]
    assert per_workflow["total"] == 1


# --- update -----------------------------------------------------------------


def test_changing_the_cron_recomputes_the_due_time(admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow, cron="0 0 1 1 *")  # next New Year
    response = admin.put(f"{API}/schedules/{schedule['id']}", {"cron": "* * * * *"})
    assert response.status_code == 200, response.json
    due = moment(response.json["next_run_at"])
    assert due <= datetime.now(UTC) + timedelta(minutes=1)
    assert response.json["cron"] == "* * * * *"
    assert response.json["payload"] == schedule["payload"]


def test_a_timezone_change_moves_the_due_time(admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow, cron="0 9 * * *")
    moved = admin.put(f"{API}/schedules/{schedule['id']}", {"timezone": "Asia/Tokyo"}).json
    assert moment(moved["next_run_at"]).astimezone(ZoneInfo("Asia/Tokyo")).hour == 9
    assert moment(moved["next_run_at"]).hour == 0  # 09:00 JST is 00:00 UTC


def test_disabling_clears_the_due_time_and_enabling_sets_it_from_now(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow, cron="@hourly")
    path = f"{API}/schedules/{schedule['id']}"
    disabled = admin.put(path, {"enabled": False}).json
    assert (disabled["enabled"], disabled["next_run_at"]) == (False, None)
    enabled = admin.put(path, {"enabled": True}).json
    due = moment(enabled["next_run_at"])
    assert enabled["enabled"] is True
    assert datetime.now(UTC) < due <= datetime.now(UTC) + timedelta(hours=1)
    assert (due.minute, due.second) == (0, 0)


def test_a_payload_change_keeps_the_due_time(admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow, cron="@daily")
    path = f"{API}/schedules/{schedule['id']}"
    updated = admin.put(path, {"payload": {"region": "eu"}}).json
    assert updated["payload"] == {"region": "eu"}
    assert updated["next_run_at"] == schedule["next_run_at"]


def test_an_invalid_update_is_422_and_changes_nothing(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow, cron="@daily")
    path = f"{API}/schedules/{schedule['id']}"
    response = admin.put(path, {"cron": "99 * * * *", "timezone": "Europe/Nowhere"})
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"cron", "timezone"}
    assert admin.put(path, {"timezone": "Bad/Zone"}).json["errors"]["timezone"]
    assert admin.put(path, {"enabled": "maybe"}).status_code == 422
    assert admin.get(path).json == schedule


def test_changes_are_audited(app: Any, admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow, cron="@daily")
    path = f"{API}/schedules/{schedule['id']}"
    admin.put(path, {"cron": "@hourly"})
    admin.put(path, {"cron": "@hourly"})  # no change, no entry
    assert admin.delete(path).status_code == 204
    actions = audit_actions(app, admin.organization_id, schedule["id"])
    assert actions == ["schedule_created", "schedule_updated", "schedule_deleted"]
    entries = admin.get(f"{API}/audit-logs?resource_type=schedule").json
    updated = next(e for e in entries["audit_logs"] if e["action"] == "schedule_updated")
    assert updated["changes"]["changed"] == ["cron"]
    assert updated["changes"]["after"] == {"cron": "@hourly"}


# --- delete -----------------------------------------------------------------


def test_a_deleted_schedule_is_gone(admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow)
    path = f"{API}/schedules/{schedule['id']}"
    assert admin.delete(path).status_code == 204
    assert admin.get(path).status_code == 404
    assert admin.delete(path).status_code == 404
    assert admin.get(f"{API}/schedules").json["total"] == 0


def test_deleting_the_workflow_deletes_its_schedules(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow)
    assert admin.delete(f"{API}/workflows/{workflow['id']}").status_code == 204
    assert admin.get(f"{API}/schedules/{schedule['id']}").status_code == 404


# --- next runs --------------------------------------------------------------


def test_next_runs_of_a_five_field_cron(admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow, cron="*/15 * * * *")
    runs = next_runs(admin, schedule)
    assert len(runs) == 5
    assert all(run.utcoffset() == timedelta(0) for run in runs)
    assert runs[0] > datetime.now(UTC) - timedelta(seconds=1)
    assert all(run.minute % 15 == 0 and run.second == 0 for run in runs)
    assert [b - a for a, b in itertools.pairwise(runs)] == [timedelta(minutes=15)] * 4


def test_next_runs_of_a_six_field_cron_have_seconds(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow, cron="*/10 * * * * *")
    runs = next_runs(admin, schedule, count=7)
    assert all(run.second % 10 == 0 for run in runs)
    assert {b - a for a, b in itertools.pairwise(runs)} == {timedelta(seconds=10)}


@pytest.mark.parametrize(
    ("cron", "step"),
    [("@hourly", timedelta(hours=1)), ("@daily", timedelta(days=1)), ("@weekly", timedelta(7))],
)
def test_next_runs_of_a_descriptor(
    admin: Caller, workflow: dict[str, Any], cron: str, step: timedelta
) -> None:
    schedule = add_schedule(admin, workflow, cron=cron)
    runs = next_runs(admin, schedule, count=3)
    assert {b - a for a, b in itertools.pairwise(runs)} == {step}
    assert all((run.minute, run.second) == (0, 0) for run in runs)
    if cron != "@hourly":
        assert all(run.hour == 0 for run in runs)


def test_nine_in_berlin_is_eight_utc_in_winter_and_seven_in_summer(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow, cron="0 9 1 * *", timezone="Europe/Berlin")
    runs = next_runs(admin, schedule, count=12)  # a year of months: both sides of DST
    berlin = ZoneInfo("Europe/Berlin")
    assert all(run.astimezone(berlin).hour == 9 for run in runs)
    assert all(run.astimezone(berlin).day == 1 for run in runs)
    for run in runs:
        offset = run.astimezone(berlin).utcoffset()
        assert run.hour == {timedelta(hours=1): 8, timedelta(hours=2): 7}[offset]
    assert {run.hour for run in runs} == {7, 8}
    assert moment(schedule["next_run_at"]) == runs[0]


def test_new_york_schedules_follow_its_own_dst(admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow, cron="30 17 15 * *", timezone="America/New_York")
    runs = next_runs(admin, schedule, count=12)
    assert {run.hour for run in runs} == {21, 22}  # 17:30 EDT / EST
    assert all(run.minute == 30 for run in runs)


@pytest.mark.parametrize("count", ["0", "101", "-1", "many"])
def test_next_runs_count_is_1_to_100(admin: Caller, workflow: dict[str, Any], count: str) -> None:
    schedule = add_schedule(admin, workflow)
    response = admin.get(f"{API}/schedules/{schedule['id']}/next-runs?count={count}")
    assert response.status_code == 422


def test_next_runs_count_bounds(admin: Caller, workflow: dict[str, Any]) -> None:
    schedule = add_schedule(admin, workflow, cron="* * * * * *")
    assert len(next_runs(admin, schedule, count=1)) == 1
    assert len(next_runs(admin, schedule, count=100)) == 100


def test_a_disabled_schedule_still_previews_its_runs(
    admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow, cron="@daily", enabled=False)
    assert len(next_runs(admin, schedule)) == 5


# --- isolation and permissions ---------------------------------------------


def test_another_organization_gets_404_for_every_schedule_id(
    client: Any, admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow)
    stranger = register(client)
    path = f"{API}/schedules/{schedule['id']}"
    assert stranger.get(f"{API}/schedules").json["total"] == 0
    assert stranger.get(path).status_code == 404
    assert stranger.put(path, {"enabled": False}).status_code == 404
    assert stranger.delete(path).status_code == 404
    assert stranger.get(f"{path}/next-runs").status_code == 404
    assert admin.get(path).json == schedule


def test_a_viewer_reads_schedules_but_cannot_change_them(
    client: Any, admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow)
    viewer = register(client)
    add_member(admin, viewer, "workflow_viewer")
    path = f"{API}/schedules/{schedule['id']}"
    assert viewer.get(path).status_code == 200
    assert viewer.get(f"{API}/schedules").status_code == 200
    assert viewer.get(f"{path}/next-runs").status_code == 200
    assert viewer.get(schedules_of(workflow)).status_code == 200
    refused = {
        "schedule:create": viewer.post(schedules_of(workflow), {"cron": "@daily"}),
        "schedule:update": viewer.put(path, {"enabled": False}),
        "schedule:delete": viewer.delete(path),
    }
    for permission, response in refused.items():
        assert response.status_code == 403
        assert response.json["message"] == f"Missing permission: {permission}"


def test_an_agent_cannot_read_schedules(
    client: Any, admin: Caller, workflow: dict[str, Any]
) -> None:
    schedule = add_schedule(admin, workflow)
    agent = register(client)
    add_member(admin, agent, "agent")
    assert agent.get(f"{API}/schedules").status_code == 403
    assert agent.get(f"{API}/schedules/{schedule['id']}").status_code == 403


def test_a_workflow_manager_manages_schedules(
    client: Any, admin: Caller, workflow: dict[str, Any]
) -> None:
    manager = register(client)
    add_member(admin, manager, "workflow_manager")
    schedule = add_schedule(manager, workflow)
    path = f"{API}/schedules/{schedule['id']}"
    assert manager.put(path, {"cron": "@daily"}).status_code == 200
    assert manager.delete(path).status_code == 204


def test_schedules_need_credentials(client: Any) -> None:
    assert client.get(f"{API}/schedules").status_code == 401


def test_every_schedule_endpoint_is_documented(client: Any) -> None:
    spec = client.get(f"{API}/openapi.json").json
    operations = {
        ("get", "/workflows/{workflow_row_id}/schedules"): "schedule:read",
        ("post", "/workflows/{workflow_row_id}/schedules"): "schedule:create",
        ("get", "/schedules"): "schedule:read",
        ("get", "/schedules/{schedule_id}"): "schedule:read",
        ("put", "/schedules/{schedule_id}"): "schedule:update",
        ("delete", "/schedules/{schedule_id}"): "schedule:delete",
        ("get", "/schedules/{schedule_id}/next-runs"): "schedule:read",
    }
    for (method, path), permission in operations.items():
        operation = spec["paths"][f"{API}{path}"][method]
        assert operation["summary"], path
        assert f"Requires `{permission}`" in operation["description"], path
        assert {"401", "403", "429"} <= set(operation["responses"]), path
        assert len([code for code in operation["responses"] if code < "400"]) == 1, path
        if method in {"post", "put"}:
            assert "requestBody" in operation, path
        if "{" in path:
            assert "404" in operation["responses"], path
