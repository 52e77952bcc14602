"""Events, executions, step runs, waits and approvals: the run-time state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, updated_at, uuid_pk


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key"),
        Index("ix_events_org_received", "organization_id", "received_at"),
        Index("ix_events_org_type", "organization_id", "event_type"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    triggered_workflows: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    execution_ids: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    received_at: Mapped[datetime] = created_at()


class Execution(Base):
    """One run of a pinned workflow version. `version` guards compare-and-set transitions."""

    __tablename__ = "executions"
    __table_args__ = (
        # Covering index for analytics (migration 0003): index-only scans over a time
        # window; it also serves every other (organization, created_at) query.
        Index(
            "ix_executions_org_created_analytics",
            "organization_id",
            "created_at",
            postgresql_include=[
                "id",
                "workflow_id",
                "status",
                "result",
                "error_type",
                "duration_ms",
                "completed_at",
            ],
        ),
        Index("ix_executions_org_status", "organization_id", "status"),
        Index("ix_executions_org_workflow_created", "organization_id", "workflow_id", "created_at"),
        Index(
            "ix_executions_deadline",
            "deadline_at",
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
        # No index on heartbeat_at (migration 0005): it changes at every step, and
        # an indexed column that changes rules out HOT updates. Queries on active
        # executions use the partial ix_executions_deadline.
        {"postgresql_with": {"fillfactor": 80}},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    # Executions outlive a deleted workflow version: they carry their pinned definition.
    workflow_row_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="SET NULL"), index=True
    )
    workflow_id: Mapped[str] = mapped_column(String(100))
    workflow_version: Mapped[str] = mapped_column(String(50))
    # The pinned definition: edits to the workflow never reach a running execution.
    definition: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(String(20))
    error_type: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text)
    trigger_type: Mapped[str] = mapped_column(String(20))
    trigger_event: Mapped[str | None] = mapped_column(String(200))
    trigger_event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL")
    )
    trigger_payload: Mapped[dict[str, Any]]
    context: Mapped[dict[str, Any]]
    current_step_id: Mapped[str | None] = mapped_column(String(100))
    attempt_group: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    # Running time budget: spent only while running, so waits do not consume it.
    running_seconds: Mapped[float] = mapped_column(server_default=text("0"))
    deadline_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class StepRun(Base):
    """One attempt of one step; the unique key makes a redelivered attempt a no-op."""

    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("execution_id", "step_id", "branch_key", "attempt_group", "attempt"),
        Index(
            "ix_step_runs_org_created_analytics",
            "organization_id",
            "created_at",
            postgresql_include=[
                "execution_id",
                "step_id",
                "step_type",
                "status",
                "attempt",
                "duration_ms",
            ],
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    execution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(100))
    step_type: Mapped[str] = mapped_column(String(20))
    # "" for a top-level step; "<parent>/<branch or index>" inside parallel/foreach.
    branch_key: Mapped[str] = mapped_column(String(200), server_default="")
    attempt_group: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    status: Mapped[str] = mapped_column(String(20))
    input: Mapped[dict[str, Any] | None]
    output: Mapped[dict[str, Any] | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(50))
    due_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at()


class Wait(Base):
    """A durable wait: for an event (with a correlation condition) or until a time."""

    __tablename__ = "waits"
    __table_args__ = (
        UniqueConstraint("execution_id", "step_id", "attempt_group"),
        Index(
            "ix_waits_open_event",
            "organization_id",
            "event_type",
            postgresql_where=text("status = 'waiting'"),
        ),
        Index("ix_waits_open_due", "due_at", postgresql_where=text("status = 'waiting'")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[str] = mapped_column(String(100))
    attempt_group: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    kind: Mapped[str] = mapped_column(String(20))  # event | timer
    event_type: Mapped[str | None] = mapped_column(String(200))
    match: Mapped[dict[str, Any] | None]
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), server_default="waiting")
    resolved_event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL")
    )
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("execution_id", "step_id", "attempt_group"),
        Index("ix_approvals_org_status", "organization_id", "status", "requested_at"),
        Index(
            "ix_approvals_pending_expiry", "expires_at", postgresql_where=text("status = 'pending'")
        ),
        Index(
            "ix_approvals_notify_due",
            "notify_due_at",
            postgresql_where=text("notify_due_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    workflow_id: Mapped[str] = mapped_column(String(100))
    step_id: Mapped[str] = mapped_column(String(100))
    attempt_group: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    entity_type: Mapped[str | None] = mapped_column(String(100))
    entity_id: Mapped[str | None] = mapped_column(String(200))
    approver_role: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decision_reason: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = created_at()
    decided_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    # Set in the transaction that decides or expires the approval, cleared once its
    # notifications went out: the durable "notification owed" marker (tasks.approvals).
    notify_due_at: Mapped[datetime | None]


class DispatchOutbox(Base):
    """A step dispatch written in the same transaction as the state change, relayed after commit."""

    __tablename__ = "dispatch_outbox"
    __table_args__ = (
        Index(
            "ix_dispatch_outbox_pending",
            "available_at",
            postgresql_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    task_name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    available_at: Mapped[datetime] = created_at()
    dispatched_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = created_at()


class Effect(Base):
    """The effects ledger: an outbound effect that succeeded is never repeated for its key."""

    __tablename__ = "effects"
    __table_args__ = (UniqueConstraint("idempotency_key"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = created_at()
