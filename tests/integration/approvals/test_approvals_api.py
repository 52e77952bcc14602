"""The approvals API: deciding carries the execution on, once, by the right people."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.integration.approvals.helpers import GROUP, waiting_approval
from tests.integration.engine.conftest import API, drive, execution
from tests.support import Caller, add_member, register

pytestmark = pytest.mark.integration


def decide(caller: Caller, approval_id: str, verb: str, reason: str | None = None) -> Any:
    body = {"reason": reason} if reason is not None else {}
    return caller.post(f"{API}/approvals/{approval_id}/{verb}", body)


def audit_count(rt: Any, approval_id: str, action: str) -> int:
    from models.business import AuditLog

    with rt.session_factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditLog)
                .where(AuditLog.resource_id == approval_id, AuditLog.action == action)
            )
            or 0
        )


def test_approve_completes_the_execution_allowed_and_records_the_decision(
    admin: Caller, rt: Any
) -> None:
    execution_id, approval = waiting_approval(admin, rt)
    assert execution(admin, execution_id)["status"] == "waiting"
    assert approval["approver_role"] == GROUP
    assert approval["step_id"] == "gate"

    response = decide(admin, approval["id"], "approve", "looks fine")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "approved"
    assert response.json["decision_reason"] == "looks fine"
    assert response.json["decided_by"] == admin.user_id
    assert response.json["decided_at"] is not None
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")
    decided = body["context"]["approvals"]["gate"]
    assert decided["status"] == "approved"
    assert decided["approver"] == admin.username
    assert decided["reason"] == "looks fine"
    assert audit_count(rt, approval["id"], "approval_approved") == 1

    read = admin.get(f"{API}/approvals/{approval['id']}")
    assert read.status_code == 200
    assert read.json["status"] == "approved"


def test_reject_blocks_the_execution(admin: Caller, rt: Any) -> None:
    execution_id, approval = waiting_approval(admin, rt)
    response = decide(admin, approval["id"], "reject", "too risky")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "rejected"
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "blocked")
    assert body["context"]["approvals"]["gate"]["status"] == "rejected"
    assert audit_count(rt, approval["id"], "approval_rejected") == 1


def test_repeating_a_decision_is_idempotent_and_the_opposite_one_conflicts(
    admin: Caller, rt: Any
) -> None:
    _, approval = waiting_approval(admin, rt)
    first = decide(admin, approval["id"], "approve")
    again = decide(admin, approval["id"], "approve")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json == first.json
    opposite = decide(admin, approval["id"], "reject")
    assert opposite.status_code == 409, opposite.json
    assert audit_count(rt, approval["id"], "approval_approved") == 1
    assert audit_count(rt, approval["id"], "approval_rejected") == 0


def test_group_membership_and_permissions_decide_who_may_decide(
    client: Any, admin: Caller, rt: Any
) -> None:
    _, approval = waiting_approval(admin, rt)
    outsider = register(client)
    add_member(admin, outsider, "approver", ["sales_manager"])
    viewer = register(client)
    add_member(admin, viewer, "workflow_viewer")
    member = register(client)
    add_member(admin, member, "approver", [GROUP])
    stranger = register(client)  # admin of another organization

    assert decide(outsider, approval["id"], "approve").status_code == 403
    assert decide(outsider, approval["id"], "reject").status_code == 403
    assert decide(viewer, approval["id"], "approve").status_code == 403
    assert decide(stranger, approval["id"], "approve").status_code == 404
    assert stranger.get(f"{API}/approvals/{approval['id']}").status_code == 404
    listed = stranger.get(f"{API}/approvals")
    assert approval["id"] not in [a["id"] for a in listed.json["approvals"]]

    mine = member.get(f"{API}/approvals", query_string={"mine": "true", "status": "pending"})
    assert approval["id"] in [a["id"] for a in mine.json["approvals"]]
    theirs = outsider.get(f"{API}/approvals", query_string={"mine": "true"})
    assert approval["id"] not in [a["id"] for a in theirs.json["approvals"]]
    by_role = member.get(f"{API}/approvals", query_string={"role": GROUP})
    assert all(a["approver_role"] == GROUP for a in by_role.json["approvals"])

    response = decide(member, approval["id"], "approve")
    assert response.status_code == 200, response.json
    assert response.json["decided_by"] == member.user_id


def test_a_missing_approval_is_404(admin: Caller) -> None:
    assert admin.get(f"{API}/approvals/{uuid.uuid4()}").status_code == 404
    assert decide(admin, str(uuid.uuid4()), "approve").status_code == 404


def test_an_expired_approval_cannot_be_decided(admin: Caller, rt: Any) -> None:
    from tests.integration.approvals.helpers import an_hour_ago, set_column

    _, approval = waiting_approval(admin, rt)
    set_column(rt, "approvals", "expires_at", approval["id"], an_hour_ago())
    assert decide(admin, approval["id"], "approve").status_code == 409


def _race(app: Any, caller: Caller, approval_id: str, verbs: list[str]) -> list[Any]:
    barrier = threading.Barrier(len(verbs))
    results: list[Any] = [None] * len(verbs)

    def run(index: int, verb: str) -> None:
        own = Caller(**{**caller.__dict__, "client": app.test_client()})
        barrier.wait()
        results[index] = decide(own, approval_id, verb)

    threads = [threading.Thread(target=run, args=(index, verb)) for index, verb in enumerate(verbs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_identical_decisions_are_applied_once(app: Any, admin: Caller, rt: Any) -> None:
    from models.execution import DispatchOutbox

    execution_id, approval = waiting_approval(admin, rt)
    results = _race(app, admin, approval["id"], ["approve"] * 4)
    assert [r.status_code for r in results] == [200] * 4, [r.json for r in results]
    assert len({r.json["decided_at"] for r in results}) == 1
    assert audit_count(rt, approval["id"], "approval_approved") == 1
    with rt.session_factory() as session:
        tickets = session.scalar(
            select(func.count())
            .select_from(DispatchOutbox)
            .where(DispatchOutbox.execution_id == uuid.UUID(execution_id))
        )
    assert (tickets or 0) <= 1
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"]) == ("completed", "allowed")


def test_concurrent_opposite_decisions_apply_exactly_one(app: Any, admin: Caller, rt: Any) -> None:
    execution_id, approval = waiting_approval(admin, rt)
    results = _race(app, admin, approval["id"], ["approve", "reject"])
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.json for r in results]
    [winner] = [r for r in results if r.status_code == 200]
    approved = audit_count(rt, approval["id"], "approval_approved")
    rejected = audit_count(rt, approval["id"], "approval_rejected")
    assert approved + rejected == 1
    drive(rt)
    body = execution(admin, execution_id)
    expected = "allowed" if winner.json["status"] == "approved" else "blocked"
    assert (body["status"], body["result"]) == ("completed", expected)
