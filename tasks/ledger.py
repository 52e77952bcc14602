"""The effects ledger: an outbound effect that succeeded is never performed twice.

Each effect carries an idempotency key (`<execution>:<step>:<attempt group>`
plus the engine's per-item suffix). A redelivered or re-run step looks its key
up first and replays the recorded result instead of repeating the effect. The
row is committed on its own, right after the effect, so a crash between the
effect and the step's final commit still remembers it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.execution import Effect

SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class LedgerScope:
    organization_id: uuid.UUID
    execution_id: uuid.UUID
    step_id: str


class EffectsLedger:
    def __init__(self, session: Session, scope: LedgerScope) -> None:
        self._session = session
        self._scope = scope

    def recorded(self, key: str) -> dict[str, Any] | None:
        """The result of the effect with this key, if it already succeeded."""
        row = self._session.scalars(
            select(Effect).where(Effect.idempotency_key == key, Effect.status == SUCCEEDED)
        ).first()
        return None if row is None else (row.result or {})

    def record(self, key: str, kind: str, result: dict[str, Any]) -> None:
        """Remember a successful effect, committed at once (nothing else is pending)."""
        self._session.execute(
            insert(Effect)
            .values(
                organization_id=self._scope.organization_id,
                execution_id=self._scope.execution_id,
                step_id=self._scope.step_id,
                idempotency_key=key,
                kind=kind,
                status=SUCCEEDED,
                result=result,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        self._session.commit()
