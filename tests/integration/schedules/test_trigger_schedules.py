"""A workflow whose trigger is `schedule` gets its schedule from the trigger, enabled while
its version is enabled, so deploying the quote-expiration example is enough for it to run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.workflows.builders import create, wrapped
from tests.support import API, Caller, register

pytestmark = pytest.mark.integration

SIX_HOURLY = "0 */6 * * *"


@pytest.fixture
def admin(client: Any) -> Caller:
    return register(client)


def scheduled(
    workflow_id: str, version: str = "1.0.0", cron: str = SIX_HOURLY, **trigger: Any
) -> dict[str, Any]:
    body = wrapped(workflow_id, version)
    body["definition"]["trigger"] = {"type": "schedule", "cron": cron, **trigger}
    return body


def schedules(caller: Caller, workflow_id: str) -> list[dict[str, Any]]:
    response = caller.get(f"{API}/schedules", query_string={"workflow_id": workflow_id})
    assert response.status_code == 200, response.json
    return list(response.json["schedules"])


def by_version(caller: Caller, workflow_id: str) -> dict[str, dict[str, Any]]:
    versions = caller.get(f"{API}/workflows", query_string={"workflow_id": workflow_id}).json
    row_to_version = {w["id"]: w["version"] for w in versions["workflows"]}
    return {row_to_version[s["workflow_row_id"]]: s for s in schedules(caller, workflow_id)}


def test_deploying_a_scheduled_workflow_schedules_it(admin: Caller) -> None:
    before = datetime.now(UTC)
    workflow = create(admin, {**scheduled("quote_sweep"), "enabled": True})
    [schedule] = schedules(admin, "quote_sweep")
    assert schedule["from_trigger"] is True
    assert schedule["workflow_row_id"] == workflow["id"]
    assert (schedule["cron"], schedule["timezone"], schedule["enabled"]) == (
        SIX_HOURLY,
        "UTC",
        True,
    )
    due = datetime.fromisoformat(schedule["next_run_at"])
    assert before < due <= before + timedelta(hours=6)
    assert (due.hour % 6, due.minute, due.second) == (0, 0, 0)


def test_a_disabled_version_keeps_its_schedule_disabled(admin: Caller) -> None:
    workflow = create(admin, {**scheduled("quote_sweep"), "enabled": False})
    [schedule] = schedules(admin, "quote_sweep")
    assert (schedule["enabled"], schedule["next_run_at"]) == (False, None)

    assert admin.post(f"{API}/workflows/{workflow['id']}/enable").status_code == 200
    [schedule] = schedules(admin, "quote_sweep")
    assert schedule["enabled"] is True
    assert schedule["next_run_at"] is not None

    assert admin.post(f"{API}/workflows/{workflow['id']}/disable").status_code == 200
    [schedule] = schedules(admin, "quote_sweep")
    assert (schedule["enabled"], schedule["next_run_at"]) == (False, None)


def test_enabling_a_new_version_moves_the_schedule_to_it(admin: Caller) -> None:
    create(admin, {**scheduled("quote_sweep", "1.0.0"), "enabled": True})
    create(admin, {**scheduled("quote_sweep", "2.0.0", "*/15 * * * *"), "enabled": True})
    derived = by_version(admin, "quote_sweep")
    assert (derived["1.0.0"]["enabled"], derived["1.0.0"]["next_run_at"]) == (False, None)
    assert (derived["2.0.0"]["enabled"], derived["2.0.0"]["cron"]) == (True, "*/15 * * * *")


def test_editing_the_trigger_reschedules_or_unschedules(admin: Caller) -> None:
    workflow = create(admin, {**scheduled("quote_sweep"), "enabled": True})
    [first] = schedules(admin, "quote_sweep")

    unchanged = admin.put(f"{API}/workflows/{workflow['id']}", {**scheduled("quote_sweep")})
    assert unchanged.status_code == 200, unchanged.json
    [same] = schedules(admin, "quote_sweep")
    assert (same["id"], same["next_run_at"]) == (first["id"], first["next_run_at"])

    new_timing = scheduled("quote_sweep", cron="30 9 * * 1-5", timezone="America/New_York")
    assert admin.put(f"{API}/workflows/{workflow['id']}", new_timing).status_code == 200
    [moved] = schedules(admin, "quote_sweep")
    assert moved["id"] == first["id"]
    assert (moved["cron"], moved["timezone"]) == ("30 9 * * 1-5", "America/New_York")
    due = datetime.fromisoformat(moved["next_run_at"])
    assert due.astimezone(UTC).minute == 30

    event_driven = wrapped("quote_sweep")
    assert admin.put(f"{API}/workflows/{workflow['id']}", event_driven).status_code == 200
    assert schedules(admin, "quote_sweep") == []


def test_schedules_added_through_the_api_are_left_alone(admin: Caller) -> None:
    workflow = create(admin, {**scheduled("quote_sweep"), "enabled": True})
    added = admin.post(f"{API}/workflows/{workflow['id']}/schedules", {"cron": "@hourly"})
    assert added.status_code == 201, added.json
    assert admin.post(f"{API}/workflows/{workflow['id']}/disable").status_code == 200
    kept = {s["id"]: s for s in schedules(admin, "quote_sweep")}
    assert kept[added.json["id"]]["enabled"] is True
    assert kept[added.json["id"]]["from_trigger"] is False


def test_a_trigger_schedule_is_timed_by_its_workflow_not_directly(admin: Caller) -> None:
    create(admin, {**scheduled("quote_owned"), "enabled": True})
    [schedule] = schedules(admin, "quote_owned")
    path = f"{API}/schedules/{schedule['id']}"

    retimed = admin.put(path, json={"cron": "@hourly"})
    disabled = admin.put(path, json={"enabled": False})
    deleted = admin.delete(path)
    with_payload = admin.put(path, json={"payload": {"region": "emea"}})

    assert [r.status_code for r in (retimed, disabled, deleted)] == [409, 409, 409]
    assert retimed.json["code"] == 409
    assert "workflow" in retimed.json["message"]
    assert with_payload.status_code == 200, with_payload.json
    [after] = schedules(admin, "quote_owned")
    assert (after["cron"], after["enabled"]) == (SIX_HOURLY, True)
    assert after["payload"] == {"region": "emea"}
