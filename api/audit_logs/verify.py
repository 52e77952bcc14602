"""Checking an organization's audit chain, and the signed export of its head.

The walk reads the chain in position order, a page at a time (bounded memory
whatever its length), recomputes every entry's hash and checks its link to the
entry before. It reports the first entry that does not match and the chain's
head, which a caller records elsewhere (an anchor) and passes back later to
catch what the walk alone cannot: a rewrite of the whole chain, or of its tail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.audit_chain import GENESIS_HASH, HASHED_COLUMNS, entry_hash
from models.business import AuditLog

PAGE_SIZE = 500
SIGNATURE_ALGORITHM = "HMAC-SHA256"
UNSIGNED_REASON = (
    "AUDIT_SIGNING_KEY is not configured on this server: the head is exported unsigned"
)

_COLUMNS = [getattr(AuditLog, name) for name in (*HASHED_COLUMNS, "entry_hash")]


@dataclass
class _Walk:
    checked: int = 0
    position: int = 0
    previous: str = GENESIS_HASH
    head: dict[str, Any] | None = None
    first_invalid: dict[str, Any] | None = None

    def fail(self, position: int, entry_id: Any, reason: str, detail: str) -> None:
        if self.first_invalid is None:
            self.first_invalid = {
                "position": position,
                "entry_id": entry_id,
                "reason": reason,
                "detail": detail,
            }


def verify_chain(
    session: Session,
    organization_id: uuid.UUID,
    anchor: tuple[int, str] | None = None,
    signing_key: str = "",
) -> dict[str, Any]:
    """The verification answer of GET /audit-logs/verify."""
    walk = _Walk()
    for row in _entries(session, organization_id):
        _check(walk, row, anchor)
    if anchor is not None and anchor[0] > walk.position:
        walk.fail(
            anchor[0],
            None,
            "anchor_mismatch",
            f"the anchored position {anchor[0]} is past the chain's end ({walk.position}):"
            " entries at its end were deleted",
        )
    valid = walk.first_invalid is None
    return {
        "valid": valid,
        "entries_checked": walk.checked,
        "first_invalid": walk.first_invalid,
        "head": walk.head,
        "signed_head": signed_head(organization_id, walk.head, valid, signing_key),
    }


def _entries(session: Session, organization_id: uuid.UUID) -> Any:
    """Every entry of the chain in position order, read by keyset pages."""
    after = 0
    while True:
        page = session.execute(
            select(*_COLUMNS)
            .where(AuditLog.organization_id == organization_id, AuditLog.chain_position > after)
            .order_by(AuditLog.chain_position)
            .limit(PAGE_SIZE)
        ).all()
        yield from page
        if len(page) < PAGE_SIZE:
            return
        after = page[-1].chain_position


def _check(walk: _Walk, row: Any, anchor: tuple[int, str] | None) -> None:
    content = row._mapping
    expected_position = walk.position + 1
    walk.checked += 1
    if row.chain_position != expected_position:
        walk.fail(
            expected_position,
            row.id,
            "missing_entry",
            f"position {expected_position} is missing: the next entry is at {row.chain_position}",
        )
    elif row.prev_hash != walk.previous:
        walk.fail(
            row.chain_position,
            row.id,
            "link_mismatch",
            "the entry's prev_hash is not the hash of the entry before it",
        )
    elif entry_hash(content) != row.entry_hash:
        walk.fail(
            row.chain_position,
            row.id,
            "content_mismatch",
            "the entry's content does not hash to its stored entry_hash",
        )
    if anchor is not None and row.chain_position == anchor[0] and row.entry_hash != anchor[1]:
        walk.fail(
            row.chain_position,
            row.id,
            "anchor_mismatch",
            "the entry at the anchored position does not have the anchored hash",
        )
    walk.position, walk.previous = row.chain_position, row.entry_hash
    walk.head = {
        "position": row.chain_position,
        "hash": row.entry_hash,
        "entry_id": row.id,
        "created_at": row.created_at,
    }


def signed_head(
    organization_id: uuid.UUID, head: dict[str, Any] | None, valid: bool, signing_key: str
) -> dict[str, Any]:
    """The head as a payload to record elsewhere, signed with HMAC-SHA256 over its
    canonical JSON when a key is configured; never a made-up signature without one."""
    payload = {
        "organization_id": str(organization_id),
        "position": head["position"] if head else 0,
        "hash": head["hash"] if head else GENESIS_HASH,
        "valid": valid,
        "verified_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    if not signing_key:
        return {
            "payload": payload,
            "algorithm": None,
            "key_id": None,
            "signature": None,
            "unsigned_reason": UNSIGNED_REASON,
        }
    return {
        "payload": payload,
        "algorithm": SIGNATURE_ALGORITHM,
        "key_id": key_id(signing_key),
        "signature": sign(payload, signing_key),
        "unsigned_reason": None,
    }


def sign(payload: dict[str, Any], signing_key: str) -> str:
    message = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(signing_key.encode(), message, hashlib.sha256).hexdigest()


def key_id(signing_key: str) -> str:
    """Names the key without revealing it: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(signing_key.encode()).hexdigest()[:16]
