"""SQLAlchemy models, sessions and migrations. Importing this registers every table."""

from models.base import Base
from models.business import AuditLog, Notification, Record
from models.execution import Approval, DispatchOutbox, Effect, Event, Execution, StepRun, Wait
from models.identity import (
    ApiKey,
    LoginAttempt,
    Membership,
    Organization,
    Permission,
    RefreshToken,
    Role,
    RolePermission,
    User,
)
from models.shadow import ShadowDifference, ShadowReport
from models.workflow import Rule, Schedule, Workflow

__all__ = [
    "ApiKey",
    "Approval",
    "AuditLog",
    "Base",
    "DispatchOutbox",
    "Effect",
    "Event",
    "Execution",
    "LoginAttempt",
    "Membership",
    "Notification",
    "Organization",
    "Permission",
    "Record",
    "RefreshToken",
    "Role",
    "RolePermission",
    "Rule",
    "Schedule",
    "ShadowDifference",
    "ShadowReport",
    "StepRun",
    "User",
    "Wait",
    "Workflow",
]
