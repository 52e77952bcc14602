"""1-based pagination: `{"<plural>": [...], "total": N, "page": P, "page_size": S}`."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

MAX_PAGE_SIZE = 100
# Deeper than this, offset paging is no way to read a list; the bound also keeps
# OFFSET (page - 1) * page_size far inside Postgres' bigint.
MAX_PAGE = 1_000_000


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def page_envelope_schema(plural: str, item_schema: type[Schema]) -> type[Schema]:
    return Schema.from_dict(
        {
            plural: fields.List(fields.Nested(item_schema), required=True),
            "total": fields.Integer(required=True),
            "page": fields.Integer(required=True),
            "page_size": fields.Integer(required=True),
        },
        name=f"{item_schema.__name__.removesuffix('Schema')}Page",
    )


def paginate(
    session: Session, statement: Select[Any], page: int, page_size: int, plural: str
) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    items = session.scalars(statement.limit(page_size).offset((page - 1) * page_size)).all()
    return {plural: list(items), "total": total or 0, "page": page, "page_size": page_size}
