"""Record-store writes of one step, applied in the transaction that records the step.

Writes are buffered while the step runs and applied by `apply()` in the step's
final transaction, so they land exactly when the step's result does: a worker
that dies mid-step leaves no half-written records, and a re-run writes them
once. Reads see the buffered writes (a step may create then update a record).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.business import Record

# Generated entity ids are derived from the step attempt group, so a re-run of
# the same step creates the same record instead of a second one.
_GENERATED_ID_NAMESPACE = uuid.UUID("6b1f6c2e-61a4-4f2f-9d0e-6f1a1f2f8a31")
_DELETED = object()


@dataclass
class _Write:
    entity: str
    entity_id: str
    data: Any  # dict, or _DELETED


class RecordBuffer:
    def __init__(
        self, session: Session, organization_id: uuid.UUID, execution_id: uuid.UUID, id_seed: str
    ) -> None:
        self._session = session
        self._organization_id = organization_id
        self._execution_id = execution_id
        self._id_seed = id_seed
        self._writes: dict[tuple[str, str], _Write] = {}
        self._generated = 0

    @property
    def has_writes(self) -> bool:
        return bool(self._writes)

    def create(self, entity: str, entity_id: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
        if entity_id is None:
            self._generated += 1
            entity_id = str(
                uuid.uuid5(_GENERATED_ID_NAMESPACE, f"{self._id_seed}:{self._generated}")
            )
        self._writes[(entity, entity_id)] = _Write(entity, entity_id, dict(data))
        return {"entity": entity, "entity_id": entity_id, "data": dict(data), "created": True}

    def update(self, entity: str, entity_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        current = self._current(entity, entity_id)
        merged = {**(current or {}), **data}
        self._writes[(entity, entity_id)] = _Write(entity, entity_id, merged)
        return {
            "entity": entity,
            "entity_id": entity_id,
            "data": merged,
            "created": current is None,
        }

    def delete(self, entity: str, entity_id: str) -> dict[str, Any]:
        existed = self._current(entity, entity_id) is not None
        self._writes[(entity, entity_id)] = _Write(entity, entity_id, _DELETED)
        return {"entity": entity, "entity_id": entity_id, "deleted": existed}

    def _current(self, entity: str, entity_id: str) -> dict[str, Any] | None:
        write = self._writes.get((entity, entity_id))
        if write is not None:
            return None if write.data is _DELETED else dict(write.data)
        return self._session.scalar(
            select(Record.data).where(
                Record.organization_id == self._organization_id,
                Record.entity == entity,
                Record.entity_id == entity_id,
            )
        )

    def apply(self) -> int:
        """Write the buffered changes into the caller's (still open) transaction."""
        for write in self._writes.values():
            if write.data is _DELETED:
                self._session.execute(
                    delete(Record).where(
                        Record.organization_id == self._organization_id,
                        Record.entity == write.entity,
                        Record.entity_id == write.entity_id,
                    )
                )
                continue
            statement = insert(Record).values(
                organization_id=self._organization_id,
                entity=write.entity,
                entity_id=write.entity_id,
                data=write.data,
                created_by_execution_id=self._execution_id,
            )
            self._session.execute(
                statement.on_conflict_do_update(
                    index_elements=["organization_id", "entity", "entity_id"],
                    set_={
                        "data": statement.excluded.data,
                        "updated_at": statement.excluded.updated_at,
                    },
                )
            )
        count = len(self._writes)
        self._writes.clear()
        return count
