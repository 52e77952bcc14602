"""Stored shadow-run reports: the request, its summary, and its differences (paged)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, uuid_pk


class ShadowReport(Base):
    """One shadow run: `pending` until a worker (or the request itself) runs it."""

    __tablename__ = "shadow_reports"
    __table_args__ = (
        Index("ix_shadow_reports_org_created", "organization_id", "created_at"),
        # What the sweeper looks through for stalled reports (tasks.shadow.requeue_stalled).
        Index(
            "ix_shadow_reports_unfinished",
            "created_at",
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    workflow_row_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="SET NULL")
    )
    workflow_id: Mapped[str] = mapped_column(String(100))
    # The recorded workflow's trigger, as it was when the report was asked for.
    current_definition: Mapped[dict[str, Any]]
    candidate: Mapped[dict[str, Any]]
    # since / until / event_ids / limit, as validated.
    selection: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20))
    summary: Mapped[dict[str, Any] | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at()
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # The last sign of life of what holds the report: the run that claimed it (its
    # claim, each chunk it writes) or the message that queued it again
    # (tasks.shadow.requeue_stalled); created_at stands in before either.
    heartbeat_at: Mapped[datetime | None]
    # Runs that claimed it: one that stops this often fails (tasks.shadow.MAX_ATTEMPTS).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ShadowDifference(Base):
    """One replayed event whose run differs, in replay order (`seq`)."""

    __tablename__ = "shadow_differences"

    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shadow_reports.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column()
    comparison: Mapped[dict[str, Any]]
