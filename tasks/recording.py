"""What one transaction records for one execution, written in one statement.

A step's result, a wake-up, an operator's control: each decides the execution's
next columns (engine.lifecycle, overlaid in the order decided: `current` is the
row as it will be) and the rows beside it (the attempt's step run, tickets,
an approval, a wait), collects them in a `Recording`, and `write` sends them as
one statement of the transition writer (models.writer), compare-and-set on the
version the decisions were made on. Nothing touches those rows before `write`;
reads in the same transaction see the rows as they were.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine import lifecycle
from models import writer
from models.execution import DispatchOutbox, Execution
from models.rows import JsonText


@dataclass(slots=True)
class Recording:
    session: Session  # for reads in the transaction (writes go through `write`)
    execution: Any  # the row as read: the ORM row, or tasks.locking.LockedExecution
    outbox_id: int | None = None  # the ticket this transition consumes
    unlocked: bool = False  # read without the row lock: compare-and-set on xmin too
    changes: lifecycle.Changes = field(default_factory=dict)
    inserts: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[Table, Any, dict[str, Any]]] = field(default_factory=list)
    tickets: list[DispatchOutbox] = field(default_factory=list)
    written: writer.Written | None = None
    context_json: str | None = None  # the context as written, when it changed
    # The execution as it is once the changes so far are written.
    current: Any = field(init=False)

    def __post_init__(self) -> None:
        self.current = lifecycle.after(self.execution, self.changes)

    def change(self, changes: lifecycle.Changes | None) -> None:
        if changes:
            self.changes.update(changes)
            self.current = lifecycle.after(self.execution, self.changes)

    def add(self, model: Any, row: dict[str, Any]) -> None:
        """Add a row (with its `id`: see new_id; only a ticket's id is the database's)."""
        self.inserts.append((_table(model), row))

    def set(self, model: Any, key: Any, values: dict[str, Any]) -> None:
        """Change a row by its key (a row added in this recording takes the values)."""
        table = _table(model)
        for added_table, row in self.inserts:
            if added_table is table and row.get("id") == key:
                row.update(values)
                return
        for changed_table, changed_key, changed in self.updates:
            if changed_table is table and changed_key == key:
                changed.update(values)
                return
        self.updates.append((table, key, dict(values)))

    def add_ticket(self, ticket: DispatchOutbox) -> DispatchOutbox:
        self.tickets.append(ticket)
        self.add(DispatchOutbox, _ticket_row(ticket))
        return ticket

    def write(self, connection: Connection) -> writer.Written | None:
        """Send everything in one statement (StaleRow: the row changed since it was read,
        nothing written); a recording that holds nothing writes nothing."""
        if self.written is not None:
            raise RuntimeError("a recording is written once")
        if not (self.changes or self.inserts or self.updates or self.outbox_id is not None):
            return None
        changes = dict(self.changes)
        if "context" in changes:
            self.context_json = json.dumps(changes["context"])
            changes["context"] = JsonText(self.context_json)
        execution = self.execution
        self.written = writer.write(
            connection,
            writer.Transition(
                execution_id=execution.id,
                version=execution.version,
                changes=changes,
                outbox_id=self.outbox_id,
                row_xmin=execution.row_xmin if self.unlocked else None,
                inserts=self.inserts,
                updates=self.updates,
            ),
        )
        self._show_written(self.written)
        return self.written

    def _show_written(self, written: writer.Written) -> None:
        # Tickets are the rows added without an id (the database numbers them).
        for ticket, row_id in zip(self.tickets, written.inserted_ids, strict=True):
            ticket.id = row_id
        if isinstance(self.execution, Execution):  # the session's row shows what was written
            for column, value in self.changes.items():
                set_committed_value(self.execution, column, value)


def new_id() -> uuid.UUID:
    """A row's id, chosen before the write (rows added in a recording name each other)."""
    return uuid.uuid4()


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _ticket_row(ticket: DispatchOutbox) -> dict[str, Any]:
    return {
        "task_name": ticket.task_name,
        "payload": ticket.payload,
        "available_at": ticket.available_at,
    }
