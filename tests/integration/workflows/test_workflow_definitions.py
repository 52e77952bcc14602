"""Creating, versioning, enabling, validating, updating and deleting workflows."""

from __future__ import annotations

import copy
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.workflows.builders import (
    API,
    audit_actions,
    create,
    example_files,
    flat,
    insert_execution,
    load_example,
    wrapped,
)
from tests.support import register

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(client: Any) -> Any:
    return register(client)


def versions_enabled(caller: Any, workflow_id: str) -> dict[str, bool]:
    response = caller.get(f"{API}/workflows", query_string={"workflow_id": workflow_id})
    assert response.status_code == 200, response.json
    return {row["version"]: row["enabled"] for row in response.json["workflows"]}


def test_every_original_example_is_accepted_as_is_and_listed(admin: Any) -> None:
    examples = [load_example(path) for path in example_files()]
    assert len(examples) >= 7
    for example in examples:
        created = create(admin, example)
        assert created["workflow_id"] == example["workflow_id"]
        assert created["enabled"] is True
        assert created["tags"] == example["tags"]
        assert set(created["definition"]) >= {"trigger", "context", "steps", "timeout"}

    listed = admin.get(f"{API}/workflows", query_string={"page_size": 100}).json
    assert listed["total"] == len(examples)
    assert {row["workflow_id"] for row in listed["workflows"]} == {
        example["workflow_id"] for example in examples
    }


def test_a_created_workflow_has_the_documented_shape(admin: Any) -> None:
    created = create(admin, wrapped())
    assert set(created) == {
        "id",
        "organization_id",
        "workflow_id",
        "version",
        "name",
        "description",
        "definition",
        "enabled",
        "tags",
        "created_at",
        "updated_at",
        "created_by",
    }
    assert created["organization_id"] == admin.organization_id
    assert created["enabled"] is False
    assert created["description"] == "Blocks big orders"
    assert admin.get(f"{API}/workflows/{created['id']}").json == created


def test_flat_and_wrapped_layouts_are_stored_in_the_same_normalised_form(admin: Any) -> None:
    from_wrapped = create(admin, wrapped("layout_a"))
    from_flat = create(admin, flat("layout_b"))
    assert from_flat["definition"] == from_wrapped["definition"]
    assert from_flat["name"] == from_wrapped["name"]
    assert from_flat["tags"] == from_wrapped["tags"]
    definition = from_flat["definition"]
    assert definition["trigger"] == {"type": "event", "event": "order.created"}
    assert definition["context"]["load"] == []
    assert "trigger" not in from_flat
    assert "steps" not in from_flat


def test_both_action_forms_are_stored_as_type_and_reason(admin: Any) -> None:
    created = create(admin, wrapped())
    actions = {step["id"]: step.get("action") for step in created["definition"]["steps"]}
    assert actions["block_order"]["type"] == "block"
    assert actions["block_order"]["reason"] == "Too big"
    assert actions["allow_order"]["type"] == "allow"
    assert "action" not in actions["allow_order"]


def test_creating_the_same_version_twice_is_a_conflict(admin: Any) -> None:
    create(admin, wrapped(version="1.0.0"))
    response = admin.post(f"{API}/workflows", flat(version="1.0.0"))
    assert response.status_code == 409
    assert response.json["code"] == 409
    assert response.json["status"] == "Conflict"


def test_the_same_version_may_exist_in_two_organizations(client: Any, admin: Any) -> None:
    create(admin, wrapped())
    create(register(client), wrapped())


def test_versions_of_a_workflow_are_listed_newest_first(admin: Any) -> None:
    first = create(admin, wrapped(version="1.0.0"))
    create(admin, wrapped(version="1.1.0"))
    create(admin, wrapped(version="2.0.0"))
    create(admin, wrapped("another_workflow"))

    response = admin.get(f"{API}/workflows/{first['id']}/versions")
    assert response.status_code == 200, response.json
    body = response.json
    assert [row["version"] for row in body["versions"]] == ["2.0.0", "1.1.0", "1.0.0"]
    assert body["total"] == 3
    assert body["page"] == 1
    assert body["page_size"] == 20

    paged = admin.get(f"{API}/workflows/{first['id']}/versions?page=2&page_size=2").json
    assert [row["version"] for row in paged["versions"]] == ["1.0.0"]


def test_creating_an_enabled_version_disables_the_previously_enabled_one(admin: Any) -> None:
    create(admin, wrapped(version="1.0.0", enabled=True))
    create(admin, flat(version="2.0.0", enabled=True))
    assert versions_enabled(admin, "order_check") == {"1.0.0": False, "2.0.0": True}


def test_enabling_a_version_disables_the_others_and_is_idempotent(admin: Any) -> None:
    one = create(admin, wrapped(version="1.0.0", enabled=True))
    two = create(admin, wrapped(version="2.0.0"))

    for _ in range(2):
        response = admin.post(f"{API}/workflows/{two['id']}/enable")
        assert response.status_code == 200, response.json
        assert response.json["enabled"] is True
        assert versions_enabled(admin, "order_check") == {"1.0.0": False, "2.0.0": True}

    response = admin.post(f"{API}/workflows/{one['id']}/enable")
    assert response.json["enabled"] is True
    assert versions_enabled(admin, "order_check") == {"1.0.0": True, "2.0.0": False}


def test_concurrent_enables_leave_exactly_one_enabled_version(app: Any, admin: Any) -> None:
    rows = [create(admin, wrapped(version=f"{index}.0.0"))["id"] for index in range(4)]

    def enable(row_id: str) -> int:
        response = app.test_client().post(f"{API}/workflows/{row_id}/enable", headers=admin.headers)
        return int(response.status_code)

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(enable, rows * 3))
    assert set(codes) <= {200, 409}
    enabled = versions_enabled(admin, "order_check")
    assert list(enabled.values()).count(True) == 1


def test_concurrently_created_enabled_versions_leave_exactly_one_enabled(
    app: Any, admin: Any
) -> None:
    def create_enabled(version: str) -> int:
        response = app.test_client().post(
            f"{API}/workflows",
            json=wrapped("brand_new", version, enabled=True),
            headers=admin.headers,
        )
        return int(response.status_code)

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(create_enabled, ["1.0.0", "2.0.0", "3.0.0", "4.0.0"]))
    assert set(codes) <= {201, 409}
    enabled = versions_enabled(admin, "brand_new")
    assert list(enabled.values()).count(True) == 1


def test_disable_is_idempotent(admin: Any) -> None:
    created = create(admin, wrapped(enabled=True))
    for _ in range(2):
        response = admin.post(f"{API}/workflows/{created['id']}/disable")
        assert response.status_code == 200, response.json
        assert response.json["enabled"] is False
    assert versions_enabled(admin, "order_check") == {"1.0.0": False}


def test_enabling_one_workflow_leaves_other_workflows_enabled(admin: Any) -> None:
    create(admin, wrapped("first", enabled=True))
    create(admin, wrapped("second", enabled=True))
    assert versions_enabled(admin, "first") == {"1.0.0": True}
    assert versions_enabled(admin, "second") == {"1.0.0": True}


def test_validate_returns_the_normalised_workflow_without_storing_it(admin: Any) -> None:
    response = admin.post(f"{API}/workflows/validate", flat())
    assert response.status_code == 200, response.json
    assert response.json["valid"] is True
    normalised = response.json["definition"]
    assert normalised["workflow_id"] == "order_check"
    assert normalised["version"] == "1.0.0"
    assert normalised["definition"]["trigger"]["event"] == "order.created"
    assert admin.get(f"{API}/workflows").json["total"] == 0


def test_validate_accepts_every_original_example(admin: Any) -> None:
    for path in example_files():
        response = admin.post(f"{API}/workflows/validate", load_example(path))
        assert response.status_code == 200, (path.name, response.json)


def test_validate_reports_a_dangling_next_at_its_path(admin: Any) -> None:
    body = wrapped()
    body["definition"]["steps"][1]["next"] = "nowhere"
    response = admin.post(f"{API}/workflows/validate", body)
    assert response.status_code == 422
    assert response.json["status"] == "Unprocessable Entity"
    assert list(response.json["errors"]) == ["definition.steps[1].next"]


def test_validate_reports_every_problem_at_its_path(admin: Any) -> None:
    body = wrapped()
    steps = body["definition"]["steps"]
    steps[0]["condition"]["operator"] = "roughly"
    steps[0]["on_false"] = "missing_step"
    steps[1]["type"] = "teleport"
    steps.append(copy.deepcopy(steps[2]))
    response = admin.post(f"{API}/workflows/validate", body)
    assert response.status_code == 422
    errors = response.json["errors"]
    assert "definition.steps[0].condition.operator" in errors
    assert "definition.steps[0].on_false" in errors
    assert "definition.steps[1].type" in errors
    assert "definition.steps[3].id" in errors


def test_the_flat_layout_reports_paths_without_the_definition_prefix(admin: Any) -> None:
    body = flat()
    body["steps"][1]["next"] = "nowhere"
    response = admin.post(f"{API}/workflows/validate", body)
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["steps[1].next"]


def test_create_refuses_an_invalid_workflow_with_the_same_errors_as_validate(admin: Any) -> None:
    body = wrapped()
    body["definition"]["steps"][0]["on_true"] = "nowhere"
    del body["name"]
    validated = admin.post(f"{API}/workflows/validate", body)
    created = admin.post(f"{API}/workflows", body)
    assert created.status_code == 422
    assert created.json["errors"] == validated.json["errors"]
    assert "definition.steps[0].on_true" in created.json["errors"]
    assert "name" in created.json["errors"]
    assert admin.get(f"{API}/workflows").json["total"] == 0


@pytest.mark.parametrize("body", [[], "text", 3])
def test_a_body_that_is_not_an_object_is_a_422(admin: Any, body: Any) -> None:
    response = admin.post(f"{API}/workflows", body)
    assert response.status_code == 422
    assert response.json["code"] == 422


def test_values_longer_than_their_columns_are_422_not_500(admin: Any) -> None:
    response = admin.post(f"{API}/workflows", wrapped("x" * 101))
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["workflow_id"]
    response = admin.post(f"{API}/workflows", flat(trigger={"type": "event", "event": "e" * 201}))
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["trigger.event"]


def test_update_replaces_the_content_and_keeps_the_identity(admin: Any) -> None:
    created = create(admin, wrapped(enabled=True))
    replacement = flat(name="Order check v2", description=None, tags=["new"])
    replacement.pop("workflow_id")
    replacement.pop("version")
    replacement["steps"][0]["condition"]["value"] = 500

    response = admin.put(f"{API}/workflows/{created['id']}", replacement)
    assert response.status_code == 200, response.json
    updated = response.json
    assert updated["id"] == created["id"]
    assert (updated["workflow_id"], updated["version"]) == ("order_check", "1.0.0")
    assert updated["name"] == "Order check v2"
    assert updated["description"] is None
    assert updated["tags"] == ["new"]
    assert updated["enabled"] is True
    assert updated["definition"]["steps"][0]["condition"]["value"] == 500
    assert updated["updated_at"] >= created["updated_at"]
    assert admin.get(f"{API}/workflows/{created['id']}").json == updated


def test_update_accepts_the_unchanged_workflow_id_and_version(admin: Any) -> None:
    created = create(admin, wrapped())
    response = admin.put(f"{API}/workflows/{created['id']}", wrapped(name="Renamed"))
    assert response.status_code == 200, response.json
    assert response.json["name"] == "Renamed"


def test_update_cannot_change_the_workflow_id_or_version(admin: Any) -> None:
    created = create(admin, wrapped())
    response = admin.put(f"{API}/workflows/{created['id']}", wrapped("renamed", "9.9.9"))
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"workflow_id", "version"}
    assert admin.get(f"{API}/workflows/{created['id']}").json == created


def test_update_validates_like_create(admin: Any) -> None:
    created = create(admin, wrapped())
    body = wrapped()
    body["definition"]["steps"][1]["next"] = "nowhere"
    response = admin.put(f"{API}/workflows/{created['id']}", body)
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["definition.steps[1].next"]


def test_delete_removes_the_version(admin: Any) -> None:
    created = create(admin, wrapped())
    response = admin.delete(f"{API}/workflows/{created['id']}")
    assert response.status_code == 204
    assert admin.get(f"{API}/workflows/{created['id']}").status_code == 404
    assert admin.delete(f"{API}/workflows/{created['id']}").status_code == 404


def test_delete_is_refused_while_an_execution_is_active(app: Any, admin: Any) -> None:
    created = create(admin, wrapped(enabled=True))
    for status in ("pending", "running", "waiting", "paused"):
        execution_id = insert_execution(app, created, status=status)
        response = admin.delete(f"{API}/workflows/{created['id']}")
        assert response.status_code == 409, status
        assert response.json["errors"]["active_executions"] == [str(execution_id)]
        _set_execution_status(app, execution_id, "completed")
    assert admin.get(f"{API}/workflows/{created['id']}").status_code == 200


def test_finished_executions_do_not_block_a_delete(app: Any, admin: Any) -> None:
    created = create(admin, wrapped())
    for status in ("completed", "failed", "cancelled"):
        insert_execution(app, created, status=status)
    assert admin.delete(f"{API}/workflows/{created['id']}").status_code == 204


def test_a_forced_delete_cancels_the_active_executions(app: Any, admin: Any) -> None:
    created = create(admin, wrapped(enabled=True))
    running = insert_execution(app, created, status="running")
    waiting = insert_execution(app, created, status="waiting")

    response = admin.delete(f"{API}/workflows/{created['id']}?force=true")
    assert response.status_code == 204
    assert admin.get(f"{API}/workflows/{created['id']}").status_code == 404
    entry = _audit_entry(app, created["id"], "workflow_deleted")
    assert sorted(entry["cancelled_executions"]) == sorted([str(running), str(waiting)])
    for execution_id in (running, waiting):
        execution = _execution(app, execution_id)
        # The executions outlive the workflow row only once their foreign key
        # stops cascading; either way none of them is left active.
        if execution is not None:
            assert execution.status == "cancelled"
            assert execution.error_type == "cancelled"


def test_an_execution_of_a_deleted_version_is_read_as_its_schema_says(app: Any, admin: Any) -> None:
    created = create(admin, wrapped(enabled=True))
    running = insert_execution(app, created, status="running")
    assert admin.delete(f"{API}/workflows/{created['id']}?force=true").status_code == 204

    response = admin.get(f"{API}/executions/{running}")

    assert response.status_code == 200, response.json
    assert response.json["workflow_row_id"] is None
    spec = admin.get(f"{API}/openapi.json").json
    assert spec["components"]["schemas"]["Execution"]["properties"]["workflow_row_id"]["nullable"]


def test_every_change_is_audited(app: Any, admin: Any) -> None:
    created = create(admin, wrapped())
    admin.put(f"{API}/workflows/{created['id']}", wrapped(name="Renamed"))
    admin.post(f"{API}/workflows/{created['id']}/enable")
    admin.post(f"{API}/workflows/{created['id']}/enable")
    admin.post(f"{API}/workflows/{created['id']}/disable")
    admin.delete(f"{API}/workflows/{created['id']}")
    assert audit_actions(app, admin.organization_id, created["id"]) == [
        "workflow_created",
        "workflow_updated",
        "workflow_enabled",
        "workflow_disabled",
        "workflow_deleted",
    ]


def test_created_by_is_the_caller(app: Any, admin: Any) -> None:
    me = admin.get(f"{API}/auth/me").json
    created = create(admin, wrapped())
    assert created["created_by"] == me["user_id"]


def _set_execution_status(app: Any, execution_id: uuid.UUID, status: str) -> None:
    from models.execution import Execution

    with app.extensions["iw"].session_factory() as session:
        execution = session.get(Execution, execution_id)
        assert execution is not None
        execution.status = status
        session.commit()


def _execution(app: Any, execution_id: uuid.UUID) -> Any:
    from models.execution import Execution

    with app.extensions["iw"].session_factory() as session:
        return session.get(Execution, execution_id)


def _audit_entry(app: Any, resource_id: str, action: str) -> dict[str, Any]:
    from sqlalchemy import select

    from models.business import AuditLog

    with app.extensions["iw"].session_factory() as session:
        entry = session.scalars(
            select(AuditLog).where(AuditLog.resource_id == resource_id, AuditLog.action == action)
        ).one()
        return dict(entry.changes)
