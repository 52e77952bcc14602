"""The hash chain of the audit log.

Every entry stores its position in its organization's chain, the hash of the
entry before it (`prev_hash`) and its own `entry_hash`: SHA-256 over a
canonical JSON of all its columns, `prev_hash` and position included. Editing
an entry breaks its own hash; deleting one breaks the link (and the position
count) of the next. Entries without an organization form one chain of their own.

Entries are linked when they are flushed, inside the transaction of the change
they record, under a per-organization advisory lock held until commit: two
concurrent writers of one organization take turns, and the second reads the
first one's committed head. A unique index on (organization_id, chain_position)
turns any writer that bypassed the lock into an error rather than a fork.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, UOWTransaction

from models.business import AuditLog

# The hash the first entry of a chain links to.
GENESIS_HASH = "0" * 64
# The advisory lock class of chain heads (pg_advisory_xact_lock(class, key)). The
# two-key space is apart from the single-key locks of the step path.
CHAIN_LOCK_CLASS = 17_001

# The columns the hash covers, in the canonical JSON's (sorted) key order.
HASHED_COLUMNS = (
    "action",
    "actor_api_key_id",
    "actor_user_id",
    "chain_position",
    "changes",
    "created_at",
    "id",
    "ip_address",
    "organization_id",
    "prev_hash",
    "request_id",
    "resource_id",
    "resource_type",
)


def entry_hash(content: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of an entry's hashed columns, as written or as read back."""
    return hashlib.sha256(canonical_json(content)).hexdigest()


def canonical_json(content: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8; UUIDs and times as text, JSON numbers as
    Postgres JSONB gives them back (so a row hashes the same before and after)."""
    document = {name: _canonical_value(name, content[name]) for name in HASHED_COLUMNS}
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _canonical_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if name == "changes":
        # What the driver sends (json.dumps: non-string keys become strings), then
        # numbers as JSONB returns them: 1.0 and 1e20 come back as whole numbers.
        return _numbers_as_stored(json.loads(json.dumps(value)))
    return value


def _numbers_as_stored(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: _numbers_as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_stored(item) for item in value]
    return value


def content_of(entry: AuditLog) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in HASHED_COLUMNS}


def link_new_entries(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    """before_flush: give every new audit entry its place in its organization's chain."""
    pending = [obj for obj in session.new if isinstance(obj, AuditLog) and obj.entry_hash is None]
    by_organization: dict[uuid.UUID | None, list[AuditLog]] = {}
    for entry in pending:
        by_organization.setdefault(entry.organization_id, []).append(entry)
    for organization_id, entries in by_organization.items():
        _link(session, organization_id, entries)


def _link(session: Session, organization_id: uuid.UUID | None, entries: list[AuditLog]) -> None:
    _share_referenced_rows(session, entries)
    lock_chain(session, organization_id)
    # A statement of its own after the lock: in READ COMMITTED its snapshot then
    # includes the head the previous holder committed.
    position, previous = head_of(session, organization_id)
    for entry in entries:
        position += 1
        entry.id = entry.id or uuid.uuid4()
        entry.created_at = entry.created_at or datetime.now(UTC)
        entry.changes = entry.changes if entry.changes is not None else {}
        entry.chain_position = position
        entry.prev_hash = previous
        entry.entry_hash = previous = entry_hash(content_of(entry))


def _share_referenced_rows(session: Session, entries: Iterable[AuditLog]) -> None:
    """KEY SHARE the rows the entries' foreign keys point at before taking the chain
    lock, so the INSERT's own foreign-key checks never wait (on, say, a password
    change holding its user FOR UPDATE) while this transaction holds the lock."""
    users = sorted({str(e.actor_user_id) for e in entries if e.actor_user_id})
    keys = sorted({str(e.actor_api_key_id) for e in entries if e.actor_api_key_id})
    if users:
        session.execute(
            text(
                "SELECT 1 FROM users WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR KEY SHARE"
            ),
            {"ids": users},
        ).all()
    if keys:
        session.execute(
            text(
                "SELECT 1 FROM api_keys WHERE id = ANY(CAST(:ids AS uuid[]))"
                " ORDER BY id FOR KEY SHARE"
            ),
            {"ids": keys},
        ).all()


def lock_chain(session: Session, organization_id: uuid.UUID | None) -> None:
    key = str(organization_id) if organization_id else ""
    session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK_CLASS, func.hashtext(key)))).all()


def head_of(session: Session, organization_id: uuid.UUID | None) -> tuple[int, str]:
    """(position, hash) of the chain's last entry; (0, GENESIS_HASH) when empty."""
    row = session.execute(
        select(AuditLog.chain_position, AuditLog.entry_hash)
        .where(_of_organization(organization_id))
        .order_by(AuditLog.chain_position.desc())
        .limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def _of_organization(organization_id: uuid.UUID | None) -> Any:
    if organization_id is None:
        return AuditLog.organization_id.is_(None)
    return AuditLog.organization_id == organization_id
