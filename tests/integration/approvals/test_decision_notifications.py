"""Approvals announce their decision and their expiry: to the approval group and to the
member who started the execution, from a worker after the commit, durably, once."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_string
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import pytest
import redis
from sqlalchemy import text

from tests.integration.approvals.helpers import GROUP, an_hour_ago, set_column, waiting_approval
from tests.integration.engine.conftest import API, BROKER_URL, drive, execution
from tests.integration.engine.sinks import Mail, SmtpSink, free_port
from tests.support import Caller, add_member, register

pytestmark = pytest.mark.integration


@pytest.fixture
def approver(client: Any, admin: Caller) -> Caller:
    """A member of the `finance` approval group in the admin's organization."""
    member = register(client)
    add_member(admin, member, "approver", [GROUP])
    return member


def announcements(smtp_sink: SmtpSink, approval_id: str) -> list[Mail]:
    return [
        mail
        for mail in smtp_sink.messages
        if "Subject: Approval " in mail.content and f"/approvals/{approval_id}" in text_of(mail)
    ]


def text_of(mail: Mail) -> str:
    """The decoded body (long lines arrive quoted-printable, with soft breaks)."""
    message = cast(EmailMessage, message_from_string(mail.content, policy=default_policy))
    return str(message.get_content())


def recipients(mails: list[Mail]) -> list[str]:
    return sorted(address for mail in mails for address in mail.recipients)


def notification_rows(rt: Any, execution_id: str) -> list[dict[str, Any]]:
    with rt.session_factory() as session:
        rows = session.execute(
            text(
                "SELECT channel, recipient, status, subject, error FROM notifications"
                " WHERE execution_id = :id AND subject LIKE 'Approval %' ORDER BY recipient"
            ),
            {"id": uuid.UUID(execution_id)},
        )
        return [dict(row._mapping) for row in rows]


def notify_due_at(rt: Any, approval_id: str) -> datetime | None:
    with rt.session_factory() as session:
        value = session.execute(
            text("SELECT notify_due_at FROM approvals WHERE id = :id"),
            {"id": uuid.UUID(approval_id)},
        ).scalar_one()
        return value if value is None else value.astimezone(UTC)


def published_notify_tasks(approval_id: str) -> int:
    """`workflows.notify_approval` messages for this approval waiting in the broker
    (no worker consumes the integration broker)."""
    from tasks.approvals import NOTIFY_APPROVAL

    broker = redis.Redis.from_url(BROKER_URL)
    try:
        messages = [json.loads(raw) for raw in broker.lrange("workflows", 0, -1)]
    finally:
        broker.close()
    return sum(
        1
        for message in messages
        if message["headers"].get("task") == NOTIFY_APPROVAL
        and approval_id in str(message["headers"].get("kwargsrepr"))
    )


def drain_owed(rt: Any, now: datetime | None = None) -> None:
    """Send whatever other tests left owed, so a batch below is about this test only."""
    from tasks.approvals import notify_owed

    while notify_owed(rt, now):
        pass


def test_an_approval_is_announced_after_the_commit_to_the_group_and_the_requester(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    from tasks.approvals import notify_decision

    execution_id, approval = waiting_approval(admin, rt)  # started by the admin
    response = approver.post(f"{API}/approvals/{approval['id']}/approve", {"reason": "fine"})
    assert response.status_code == 200, response.json

    # Nothing was sent from the request: the notification is owed, and a worker is asked.
    assert announcements(smtp_sink, approval["id"]) == []
    assert notify_due_at(rt, approval["id"]) is not None
    assert published_notify_tasks(approval["id"]) == 1

    assert notify_decision(rt, uuid.UUID(approval["id"])) is True
    mails = announcements(smtp_sink, approval["id"])
    assert recipients(mails) == sorted([approver.email, admin.email])
    for mail in mails:
        assert "Subject: Approval approved: step gate" in mail.content
        assert f"was approved by {approver.username}. Reason: fine" in text_of(mail)
        assert execution_id in text_of(mail)
    assert notification_rows(rt, execution_id) == [
        {
            "channel": "email",
            "recipient": address,
            "status": "sent",
            "subject": "Approval approved: step gate",
            "error": None,
        }
        for address in sorted([approver.email, admin.email])
    ]
    assert notify_due_at(rt, approval["id"]) is None

    # Announced once: the task again, or the expiry job later, sends nothing more.
    assert notify_decision(rt, uuid.UUID(approval["id"])) is False
    drain_owed(rt, datetime.now(UTC) + timedelta(hours=1))
    assert len(announcements(smtp_sink, approval["id"])) == 2
    drive(rt)
    assert execution(admin, execution_id)["status"] == "completed"


def test_a_rejection_by_an_admin_outside_the_group_is_announced(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    from tasks.approvals import notify_decision

    execution_id, approval = waiting_approval(admin, rt)
    response = admin.post(f"{API}/approvals/{approval['id']}/reject", {"reason": "too risky"})
    assert response.status_code == 200, response.json
    assert notify_decision(rt, uuid.UUID(approval["id"])) is True
    mails = announcements(smtp_sink, approval["id"])
    assert recipients(mails) == sorted([approver.email, admin.email])
    assert all("Subject: Approval rejected: step gate" in mail.content for mail in mails)
    assert all(f"rejected by {admin.username}. Reason: too risky" in text_of(m) for m in mails)
    assert [row["status"] for row in notification_rows(rt, execution_id)] == ["sent", "sent"]


def test_an_expiry_is_announced_by_the_expiry_job_that_expired_it(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    from tasks.jobs import expire_approvals

    execution_id, approval = waiting_approval(admin, rt)
    set_column(rt, "approvals", "expires_at", approval["id"], an_hour_ago())
    drain_owed(rt)
    expire_approvals()  # the beat job's body: expire, then announce what is owed
    mails = announcements(smtp_sink, approval["id"])
    assert recipients(mails) == sorted([approver.email, admin.email])
    assert all("Subject: Approval expired: step gate" in mail.content for mail in mails)
    assert all("expired at " in text_of(mail) for mail in mails)
    assert notify_due_at(rt, approval["id"]) is None
    drive(rt)
    body = execution(admin, execution_id)
    assert (body["status"], body["result"], body["error_type"]) == (
        "completed",
        "blocked",
        "timeout",
    )


def test_a_lost_publish_is_announced_by_the_expiry_job_after_the_grace(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    from tasks.approvals import NOTIFY_GRACE, notify_owed

    _, approval = waiting_approval(admin, rt)
    assert approver.post(f"{API}/approvals/{approval['id']}/approve", {}).status_code == 200
    # Nobody consumes the published task here: as if the broker lost it.
    drain_owed(rt)
    assert announcements(smtp_sink, approval["id"]) == []  # within the grace: left to the task
    later = datetime.now(UTC) + NOTIFY_GRACE + timedelta(seconds=1)
    assert notify_owed(rt, later) >= 1
    drain_owed(rt, later)
    assert recipients(announcements(smtp_sink, approval["id"])) == sorted(
        [approver.email, admin.email]
    )


def test_a_failed_delivery_is_recorded_and_retried_later(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    from tasks import runtime
    from tasks.approvals import NOTIFY_RETRY_MIN, notify_decision, notify_owed

    execution_id, approval = waiting_approval(admin, rt)
    assert approver.post(f"{API}/approvals/{approval['id']}/approve", {}).status_code == 200
    no_smtp = runtime.Runtime(replace(rt.settings, smtp_port=free_port()))
    try:
        assert notify_decision(no_smtp, uuid.UUID(approval["id"])) is False
    finally:
        no_smtp.db_engine.dispose()
    assert announcements(smtp_sink, approval["id"]) == []
    failed = notification_rows(rt, execution_id)
    assert [row["status"] for row in failed] == ["failed", "failed"]
    assert all(row["error"] for row in failed)
    retry_at = notify_due_at(rt, approval["id"])
    assert retry_at is not None
    assert retry_at >= datetime.now(UTC) + NOTIFY_RETRY_MIN - timedelta(seconds=5)

    drain_owed(rt, retry_at + timedelta(seconds=1))
    assert notify_owed(rt, retry_at + timedelta(seconds=1)) == 0
    assert recipients(announcements(smtp_sink, approval["id"])) == sorted(
        [approver.email, admin.email]
    )
    statuses = sorted(row["status"] for row in notification_rows(rt, execution_id))
    assert statuses == ["failed", "failed", "sent", "sent"]
    assert notify_due_at(rt, approval["id"]) is None


def test_an_announcement_repeated_after_a_crash_sends_nothing_twice(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    from tasks.approvals import notify_decision

    execution_id, approval = waiting_approval(admin, rt)
    assert approver.post(f"{API}/approvals/{approval['id']}/approve", {}).status_code == 200
    assert notify_decision(rt, uuid.UUID(approval["id"])) is True
    # The worker died after sending but before clearing the marker: it is owed again.
    set_column(rt, "approvals", "notify_due_at", approval["id"], an_hour_ago())
    assert notify_decision(rt, uuid.UUID(approval["id"])) is True
    assert len(announcements(smtp_sink, approval["id"])) == 2  # the ledger replayed both
    assert len(notification_rows(rt, execution_id)) == 2


def test_racing_workers_announce_a_decision_once(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    from tasks.approvals import notify_decision

    _, approval = waiting_approval(admin, rt)
    assert approver.post(f"{API}/approvals/{approval['id']}/approve", {}).status_code == 200
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def deliver() -> None:
        barrier.wait()
        results.append(notify_decision(rt, uuid.UUID(approval["id"])))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert recipients(announcements(smtp_sink, approval["id"])) == sorted(
        [approver.email, admin.email]
    )


def test_a_refused_decision_owes_no_announcement(
    admin: Caller, approver: Caller, rt: Any, smtp_sink: SmtpSink
) -> None:
    _, approval = waiting_approval(admin, rt)
    set_column(rt, "approvals", "expires_at", approval["id"], an_hour_ago())
    assert approver.post(f"{API}/approvals/{approval['id']}/approve", {}).status_code == 409
    assert notify_due_at(rt, approval["id"]) is None
    assert published_notify_tasks(approval["id"]) == 0
