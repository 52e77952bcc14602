"""An organization of real users for the waiting and cron end-to-end tests, and the
helpers that read what the running stack did (over HTTP where the API shows it, in
Postgres where only the database does: notifications, waits, the effects ledger).

Due-times hours or days away are never slept through: `expire_now`, `time_out_now`
and `make_due` move the due-time row into the past and leave the firing to the real
beat job (every second in this stack, see conftest).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_string
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.e2e.engine.conftest import FINAL, Api, load_example
from tests.e2e.stack import Stack
from tests.integration.engine.sinks import Mail, SmtpSink, wait_for

APPROVAL_GROUPS = ("sales_manager", "sales_rep", "fraud_analyst")


def uid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Member:
    api: Api
    username: str

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"  # as Api.register makes it


@dataclass
class Team:
    """A fresh organization: its admin (who sends the events, so is the requester) and one
    approver member per approval group, each acting in the admin's organization."""

    admin: Member
    members: dict[str, Member]
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def api(self) -> Api:
        return self.admin.api

    def deploy(self, example: str, sink_url: str) -> dict[str, Any]:
        if example not in self.workflows:
            self.workflows[example] = self.api.deploy(load_example(example, sink_url))
        return self.workflows[example]


def register(stack: Stack, prefix: str) -> Member:
    username = uid(prefix)
    return Member(Api(stack.api_url).register(username), username)


def make_team(stack: Stack) -> Team:
    admin = register(stack, "admin")
    members = {group: join(stack, admin, group) for group in APPROVAL_GROUPS}
    return Team(admin, members)


def join(stack: Stack, admin: Member, group: str) -> Member:
    """A new user added to the admin's organization as an approver of `group`, switched
    into it (POST /organizations/{id}/members, then /auth/switch-organization)."""
    member = register(stack, group.replace("_", ""))
    added = admin.api.post(
        f"/organizations/{admin.api.organization_id}/members",
        {"username": member.username, "role": "approver", "approver_roles": [group]},
    )
    assert added.status_code == 201, added.text
    switched = member.api.post(
        "/auth/switch-organization", {"organization_id": admin.api.organization_id}
    )
    assert switched.status_code == 200, switched.text
    member.api.token = switched.json()["access_token"]
    member.api.organization_id = admin.api.organization_id
    return member


# --- executions ---------------------------------------------------------------------------
def only_execution(accepted: dict[str, Any]) -> str:
    assert len(accepted["execution_ids"]) == 1, accepted
    return str(accepted["execution_ids"][0])


def park(api: Api, execution_id: str, step_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll until the execution waits at `step_id` (an approval or a wait step)."""

    def parked() -> dict[str, Any] | None:
        body = api.execution(execution_id)
        if body["status"] in FINAL:
            raise AssertionError(f"finished instead of waiting at {step_id}: {body}")
        at_step = body["status"] == "waiting" and body["current_step_id"] == step_id
        return body if at_step else None

    return dict(wait_for(parked, timeout=timeout))


def step_runs(api: Api, execution_id: str) -> list[tuple[str, int, str]]:
    steps = api.trace(execution_id)["steps"]
    return [(s["step_id"], s["attempt"], s["status"]) for s in steps if not s["branch_key"]]


def executions_of(api: Api, workflow_id: str) -> list[dict[str, Any]]:
    response = api.get("/executions", params={"workflow_id": workflow_id, "page_size": 100})
    assert response.status_code == 200, response.text
    return list(response.json()["executions"])


def record(api: Api, entity: str, entity_id: str) -> dict[str, Any]:
    response = api.get("/records", params={"entity": entity, "entity_id": entity_id})
    assert response.status_code == 200, response.text
    [found] = response.json()["records"]
    return dict(found["data"])


def records_where(api: Api, entity: str, key: str, value: Any) -> list[dict[str, Any]]:
    response = api.get("/records", params={"entity": entity, "page_size": 100})
    assert response.status_code == 200, response.text
    return [r["data"] for r in response.json()["records"] if r["data"].get(key) == value]


# --- approvals ----------------------------------------------------------------------------
def approval_at(api: Api, execution_id: str, step_id: str) -> dict[str, Any]:
    response = api.get("/approvals", params={"execution_id": execution_id})
    assert response.status_code == 200, response.text
    [approval] = [a for a in response.json()["approvals"] if a["step_id"] == step_id]
    return dict(approval)


def decide(
    member: Member, approval_id: str, verb: str, reason: str | None = None
) -> dict[str, Any]:
    body = {"reason": reason} if reason is not None else {}
    response = member.api.post(f"/approvals/{approval_id}/{verb}", body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def lifetime(approval: dict[str, Any]) -> timedelta:
    expires = datetime.fromisoformat(approval["expires_at"])
    return expires - datetime.fromisoformat(approval["requested_at"])


# --- moving due-times into the past (the beat jobs fire them) ------------------------------
def expire_now(db: Engine, approval_id: str) -> None:
    with db.begin() as connection:
        moved = connection.execute(
            text(
                "UPDATE approvals SET expires_at = now() - interval '1 second'"
                " WHERE id = :id AND status = 'pending'"
            ),
            {"id": approval_id},
        ).rowcount
    assert moved == 1


def time_out_now(db: Engine, execution_id: str, step_id: str) -> timedelta:
    """Make a waiting `wait` step's timeout due; returns the timeout it had."""
    with db.begin() as connection:
        row = connection.execute(
            text(
                "UPDATE waits w SET due_at = now() - interval '1 second'"
                " FROM waits old WHERE old.id = w.id AND w.execution_id = :id"
                " AND w.step_id = :step AND w.status = 'waiting'"
                " RETURNING old.due_at - old.created_at"
            ),
            {"id": execution_id, "step": step_id},
        ).one()
    return cast(timedelta, row[0])


def make_due(db: Engine, schedule_id: str, due: datetime) -> None:
    with db.begin() as connection:
        moved = connection.execute(
            text("UPDATE schedules SET next_run_at = :due WHERE id = :id"),
            {"id": schedule_id, "due": due},
        ).rowcount
    assert moved == 1


# --- what was sent --------------------------------------------------------------------------
def parsed(mail: Mail) -> EmailMessage:
    return cast(EmailMessage, message_from_string(mail.content, policy=default_policy))


def subject(mail: Mail) -> str:
    return str(parsed(mail)["Subject"])


def body_of(mail: Mail) -> str:
    """The decoded text (long lines arrive quoted-printable, with soft breaks)."""
    return str(parsed(mail).get_content())


def mails(smtp: SmtpSink, address: str, needle: str) -> list[Mail]:
    return [mail for mail in smtp.to(address) if needle in body_of(mail)]


def announcement(
    smtp: SmtpSink,
    address: str,
    approval_id: str,
    status: str,
    timeout: float = 20,
    *,
    redelivery: bool = False,
) -> Mail:
    """The one decision/expiry email about this approval that `address` got (waits for it).

    With `redelivery`, copies of one message (the same Message-ID, as a send repeated
    after a worker was killed between the send and its ledger entry) count once, as
    the recipient's mail system counts them; distinct messages still fail the test.
    """

    def received() -> list[Mail]:
        mails = [
            mail
            for mail in smtp.to(address)
            if subject(mail).startswith(f"Approval {status}:")
            and f"/approvals/{approval_id}" in body_of(mail)
        ]
        if not redelivery:
            return mails
        return list({str(parsed(mail)["Message-ID"]): mail for mail in mails}.values())

    [mail] = wait_for(received, timeout=timeout)
    return mail


def notifications(db: Engine, execution_id: str) -> list[dict[str, Any]]:
    query = (
        "SELECT step_id, channel, recipient, status, subject, message, error FROM notifications"
        " WHERE execution_id = :id ORDER BY created_at, recipient"
    )
    with db.connect() as connection:
        rows = connection.execute(text(query), {"id": execution_id})
        return [dict(row._mapping) for row in rows]


def announcements_recorded(
    db: Engine, execution_id: str, step_id: str
) -> list[tuple[str, str, str]]:
    """(subject, recipient, status) of the announcements of the approval of one step."""
    return sorted(
        (row["subject"], row["recipient"], row["status"])
        for row in notifications(db, execution_id)
        if row["step_id"] == step_id and (row["subject"] or "").startswith("Approval ")
    )


def ledger(db: Engine, execution_id: str) -> list[tuple[str, str]]:
    """(step id, kind) of every effect in the effects ledger of an execution."""
    with db.connect() as connection:
        rows = connection.execute(
            text("SELECT step_id, kind FROM effects WHERE execution_id = :id"),
            {"id": execution_id},
        )
        return sorted((row[0], row[1]) for row in rows)
