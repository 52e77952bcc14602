"""The RBAC catalogue: permissions and the roles that hold them.

Plain data, seeded into `roles`/`permissions`/`role_permissions` by migrations
and by `seed_roles()` so the tables always agree with this module.
"""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "workflow:read": "List and read workflows and their versions",
    "workflow:create": "Create workflows and new versions, validate definitions",
    "workflow:update": "Update, enable and disable workflows",
    "workflow:delete": "Delete workflows",
    "workflow:execute": "Start workflows manually and dry-run them",
    "execution:read": "List and read executions and traces",
    "execution:pause": "Pause executions",
    "execution:resume": "Resume executions",
    "execution:cancel": "Cancel executions",
    "execution:retry": "Retry failed executions",
    "approval:read": "List and read approvals",
    "approval:approve": "Approve approvals of one's approval groups",
    "approval:reject": "Reject approvals of one's approval groups",
    "event:create": "Send events",
    "event:read": "List and read events",
    "rule:read": "List and read rules",
    "rule:create": "Create rules",
    "rule:update": "Update, enable and disable rules",
    "rule:delete": "Delete rules",
    "schedule:read": "List and read schedules",
    "schedule:create": "Create schedules",
    "schedule:update": "Update schedules",
    "schedule:delete": "Delete schedules",
    "record:read": "Read the record store",
    "analytics:read": "Read analytics",
    "organization:read": "Read the organization and its members",
    "organization:update": "Rename the organization",
    "organization:delete": "Delete the organization",
    "organization:members": "Add, change and remove members",
    "apikey:read": "List API keys",
    "apikey:create": "Create API keys",
    "apikey:revoke": "Revoke API keys",
    "audit:read": "Read the audit log",
    "ai:use": "Use the AI endpoints",
}

_READ = [p for p in PERMISSIONS if p.endswith(":read")]

ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("Everything in the organization", list(PERMISSIONS)),
    "workflow_manager": (
        "Builds and runs workflows",
        [
            *_READ,
            "workflow:create",
            "workflow:update",
            "workflow:delete",
            "workflow:execute",
            "execution:pause",
            "execution:resume",
            "execution:cancel",
            "execution:retry",
            "event:create",
            "rule:create",
            "rule:update",
            "rule:delete",
            "schedule:create",
            "schedule:update",
            "schedule:delete",
            "apikey:create",
            "apikey:revoke",
            "ai:use",
        ],
    ),
    "workflow_viewer": (
        "Reads everything but the audit log",
        [p for p in _READ if p != "audit:read"],
    ),
    "approver": (
        "Decides approvals",
        [
            "approval:read",
            "approval:approve",
            "approval:reject",
            "workflow:read",
            "execution:read",
            "event:read",
            "organization:read",
        ],
    ),
    "agent": (
        "A system integration: sends events and starts workflows",
        [
            "event:create",
            "event:read",
            "workflow:read",
            "workflow:execute",
            "execution:read",
            "apikey:read",
        ],
    ),
}


def permissions_of(role: str) -> frozenset[str]:
    return frozenset(ROLES[role][1]) if role in ROLES else frozenset()
