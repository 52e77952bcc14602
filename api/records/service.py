"""Reads of the record store; workflows write it through the engine."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select

from api.errors import abort
from api.pagination import paginate
from api.services import services
from models.business import Record


def list_records(organization_id: uuid.UUID, query: Mapping[str, Any]) -> dict[str, Any]:
    statement: Select[Any] = select(Record).where(Record.organization_id == organization_id)
    if query.get("entity"):
        statement = statement.where(Record.entity == query["entity"])
    if query.get("entity_id"):
        statement = statement.where(Record.entity_id == query["entity_id"])
    statement = statement.order_by(Record.updated_at.desc(), Record.id.desc())
    with services().session_factory() as session:
        return paginate(session, statement, query["page"], query["page_size"], "records")


def get_record(organization_id: uuid.UUID, entity: str, entity_id: str) -> Record:
    with services().session_factory() as session:
        record = session.scalars(
            select(Record).where(
                Record.organization_id == organization_id,
                Record.entity == entity,
                Record.entity_id == entity_id,
            )
        ).first()
    if record is None:
        abort(404, f"No {entity} record with id {entity_id!r}")
    return record
