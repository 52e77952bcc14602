"""Workflow definitions (versioned), rules and cron schedules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, updated_at, uuid_pk


class Workflow(Base):
    """One version of a workflow; `workflow_id` is the slug shared by all versions."""

    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("organization_id", "workflow_id", "version"),
        # At most one enabled version per workflow slug.
        Index(
            "uq_workflows_one_enabled_version",
            "organization_id",
            "workflow_id",
            unique=True,
            postgresql_where=text("enabled"),
        ),
        Index("ix_workflows_org_created", "organization_id", "created_at"),
        Index("ix_workflows_enabled_trigger", "enabled", "trigger_type"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    workflow_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    trigger_type: Mapped[str] = mapped_column(String(20))
    trigger_event: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Rule(Base):
    """A named, reusable set of conditions referenced by `rule_id` in definitions."""

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("organization_id", "rule_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[list[Any]]
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Schedule(Base):
    """A cron schedule; `next_run_at` is the durable due-time the scheduler claims."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "next_run_at", postgresql_where=text("enabled")),)

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    workflow_row_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    workflow_id: Mapped[str] = mapped_column(String(100))
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    from_trigger: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
