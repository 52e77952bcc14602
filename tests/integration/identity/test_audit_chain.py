"""The audit log's hash chain: linked as written, verified by GET /audit-logs/verify,
and broken at the row someone edited, deleted or forged in Postgres."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import create_engine, text

from api.audit_logs.verify import verify_chain
from models.audit_chain import GENESIS_HASH
from models.business import AuditLog
from models.db import make_session_factory
from models.migration import alembic_config, create_database_if_missing, drop_database
from tests.support import API, add_member, create_api_key, register

VERIFY = f"{API}/audit-logs/verify"


def _sql(app: Any, statement: str, **params: Any) -> Any:
    """A change made straight in Postgres, past the API (what a tamperer does)."""
    with app.extensions["iw"].session_factory() as session:
        result = session.execute(text(statement), params)
        rows = result.all() if result.returns_rows else None
        session.commit()
        return rows


def _chain(app: Any, organization_id: str) -> list[Any]:
    return list(
        _sql(
            app,
            "SELECT id, chain_position, prev_hash, entry_hash FROM audit_logs"
            " WHERE organization_id = :org ORDER BY chain_position",
            org=organization_id,
        )
    )


def _organization_with_entries(client: Any) -> Any:
    admin = register(client)
    for _ in range(3):
        create_api_key(admin, ["workflow:read"])
    return admin


def test_entries_are_linked_in_order_and_the_chain_verifies(app: Any, client: Any) -> None:
    admin = _organization_with_entries(client)

    chain = _chain(app, admin.organization_id)
    answer = admin.get(VERIFY)

    assert [row.chain_position for row in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.entry_hash
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["valid"] is True
    assert body["first_invalid"] is None
    assert body["entries_checked"] == len(chain) >= 5
    assert body["head"]["position"] == len(chain)
    assert body["head"]["hash"] == chain[-1].entry_hash
    assert body["head"]["entry_id"] == str(chain[-1].id)
    listed = admin.get(f"{API}/audit-logs/{chain[-1].id}").json
    assert listed["entry_hash"] == chain[-1].entry_hash


def test_without_a_key_the_head_is_exported_unsigned_and_says_so(client: Any) -> None:
    admin = register(client)

    signed = admin.get(VERIFY).json["signed_head"]

    assert signed["signature"] is None
    assert signed["algorithm"] is None
    assert "AUDIT_SIGNING_KEY is not configured" in signed["unsigned_reason"]
    assert signed["payload"]["organization_id"] == admin.organization_id
    assert signed["payload"]["valid"] is True


def test_with_a_key_the_head_is_signed_with_hmac_sha256(app: Any, client: Any) -> None:
    admin = register(client)
    key = "k" * 40

    with app.extensions["iw"].session_factory() as session:
        answer = verify_chain(session, uuid.UUID(admin.organization_id), None, key)

    signed = answer["signed_head"]
    message = json.dumps(signed["payload"], sort_keys=True, separators=(",", ":")).encode()
    assert signed["algorithm"] == "HMAC-SHA256"
    assert signed["signature"] == hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    assert signed["key_id"] == hashlib.sha256(key.encode()).hexdigest()[:16]
    assert signed["payload"]["hash"] == answer["head"]["hash"]
    assert signed["unsigned_reason"] is None


def test_an_entry_edited_in_postgres_fails_verification_at_that_entry(
    app: Any, client: Any
) -> None:
    admin = _organization_with_entries(client)
    target = _chain(app, admin.organization_id)[2]

    _sql(
        app,
        """UPDATE audit_logs SET changes = '{"scopes": ["admin"]}' WHERE id = :id""",
        id=target.id,
    )
    body = admin.get(VERIFY).json

    assert body["valid"] is False
    assert body["first_invalid"]["position"] == target.chain_position
    assert body["first_invalid"]["entry_id"] == str(target.id)
    assert body["first_invalid"]["reason"] == "content_mismatch"
    assert body["signed_head"]["payload"]["valid"] is False


def test_an_edit_that_also_rewrites_the_entrys_hash_breaks_the_next_link(
    app: Any, client: Any
) -> None:
    admin = _organization_with_entries(client)
    chain = _chain(app, admin.organization_id)

    _sql(app, "UPDATE audit_logs SET entry_hash = :h WHERE id = :id", h="f" * 64, id=chain[1].id)
    body = admin.get(VERIFY).json

    assert body["valid"] is False
    assert body["first_invalid"]["position"] == chain[1].chain_position
    assert body["first_invalid"]["reason"] == "content_mismatch"


def test_an_entry_deleted_in_postgres_fails_verification_at_its_position(
    app: Any, client: Any
) -> None:
    admin = _organization_with_entries(client)
    chain = _chain(app, admin.organization_id)

    _sql(app, "DELETE FROM audit_logs WHERE id = :id", id=chain[2].id)
    body = admin.get(VERIFY).json

    assert body["valid"] is False
    assert body["first_invalid"]["position"] == chain[2].chain_position
    assert body["first_invalid"]["reason"] == "missing_entry"
    assert body["first_invalid"]["entry_id"] == str(chain[3].id)


def test_a_row_forged_in_postgres_fails_verification_at_that_row(app: Any, client: Any) -> None:
    admin = _organization_with_entries(client)
    chain = _chain(app, admin.organization_id)
    forged = uuid.uuid4()

    _sql(
        app,
        "INSERT INTO audit_logs (id, organization_id, action, resource_type, changes,"
        " created_at, chain_position, prev_hash, entry_hash) VALUES (:id, :org,"
        " 'api_key_revoked', 'api_key', '{}', now(), :pos, :prev, :hash)",
        id=str(forged),
        org=admin.organization_id,
        pos=len(chain) + 1,
        prev=chain[-1].entry_hash,
        hash="a" * 64,
    )
    body = admin.get(VERIFY).json

    assert body["valid"] is False
    assert body["first_invalid"]["position"] == len(chain) + 1
    assert body["first_invalid"]["entry_id"] == str(forged)
    assert body["first_invalid"]["reason"] == "content_mismatch"


def test_a_recorded_head_catches_a_deleted_tail_the_walk_alone_cannot(
    app: Any, client: Any
) -> None:
    admin = _organization_with_entries(client)
    head = admin.get(VERIFY).json["head"]
    anchored = f"{VERIFY}?anchor_position={head['position']}&anchor_hash={head['hash']}"
    assert admin.get(anchored).json["valid"] is True

    _sql(app, "DELETE FROM audit_logs WHERE id = :id", id=head["entry_id"])
    unanchored = admin.get(VERIFY).json
    body = admin.get(anchored).json

    assert unanchored["valid"] is True  # what the chain alone cannot prove
    assert body["valid"] is False
    assert body["first_invalid"]["reason"] == "anchor_mismatch"
    assert body["first_invalid"]["position"] == head["position"]


def test_a_rewritten_anchored_entry_is_reported(client: Any) -> None:
    admin = _organization_with_entries(client)
    head = admin.get(VERIFY).json["head"]

    body = admin.get(f"{VERIFY}?anchor_position={head['position'] - 1}&anchor_hash={'b' * 64}").json

    assert body["valid"] is False
    assert body["first_invalid"]["reason"] == "anchor_mismatch"
    assert body["first_invalid"]["position"] == head["position"] - 1


def test_verification_reads_only_the_callers_organization(app: Any, client: Any) -> None:
    tampered = _organization_with_entries(client)
    other = _organization_with_entries(client)
    _sql(
        app,
        "DELETE FROM audit_logs WHERE id = :id",
        id=_chain(app, tampered.organization_id)[1].id,
    )

    assert other.get(VERIFY).json["valid"] is True
    assert tampered.get(VERIFY).json["valid"] is False


def test_verification_needs_audit_read_and_a_complete_anchor(client: Any) -> None:
    admin = register(client)
    viewer = register(client)
    add_member(admin, viewer, "workflow_viewer")

    forbidden = viewer.get(VERIFY)
    half = admin.get(f"{VERIFY}?anchor_position=2")
    not_hex = admin.get(f"{VERIFY}?anchor_position=2&anchor_hash=xyz")
    zero = admin.get(f"{VERIFY}?anchor_position=0&anchor_hash={'a' * 64}")

    assert forbidden.status_code == 403
    assert set(forbidden.json) >= {"code", "status", "message"}
    for response in (half, not_hex, zero):
        assert response.status_code == 422, response.json
        assert response.json["code"] == 422


def test_concurrent_writers_of_one_organization_build_one_chain(app: Any, client: Any) -> None:
    admin = register(client)
    organization = uuid.UUID(admin.organization_id)
    factory = app.extensions["iw"].session_factory
    writers, per_writer = 6, 5
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            start.wait()
            for index in range(per_writer):
                with factory() as session:
                    session.add(
                        AuditLog(
                            organization_id=organization,
                            action="concurrent_write",
                            resource_type="test",
                            changes={"writer": number, "index": index, "ratio": 1.0},
                        )
                    )
                    session.commit()
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    chain = _chain(app, admin.organization_id)
    assert [row.chain_position for row in chain] == list(range(1, len(chain) + 1))
    assert len(chain) >= writers * per_writer
    body = admin.get(VERIFY).json
    assert body["valid"] is True, body["first_invalid"]
    assert body["entries_checked"] == len(chain)


def test_the_migration_chains_the_entries_written_before_it(database_url: str) -> None:
    url = database_url + "_chain_backfill"
    create_database_if_missing(url)
    db_engine = create_engine(url)
    try:
        config = alembic_config(url)
        command.upgrade(config, "0006")
        organizations = _two_organizations_with_old_entries(db_engine)
        command.upgrade(config, "0007_i17")
        factory = make_session_factory(db_engine)
        with factory() as session:
            for organization, count in organizations.items():
                answer = verify_chain(session, organization)
                assert answer["valid"] is True, answer["first_invalid"]
                assert answer["entries_checked"] == count
            session.add(
                AuditLog(
                    organization_id=organizations_first(organizations),
                    action="after_the_migration",
                    resource_type="test",
                )
            )
            session.commit()
            after = verify_chain(session, organizations_first(organizations))
        assert after["valid"] is True
        assert after["head"]["position"] == 4
        with db_engine.connect() as connection:
            orders = connection.execute(
                text(
                    "SELECT changes->>'n' FROM audit_logs WHERE organization_id IS NOT NULL"
                    " AND changes ? 'n' ORDER BY organization_id, chain_position"
                )
            ).scalars()
            assert [int(n) for n in orders] == [0, 1, 2, 0, 1]
    finally:
        db_engine.dispose()
        drop_database(url)


def organizations_first(organizations: dict[uuid.UUID, int]) -> uuid.UUID:
    return sorted(organizations, key=str)[0]


def _two_organizations_with_old_entries(db_engine: Any) -> dict[uuid.UUID, int]:
    """Entries as version 0006 wrote them: no chain columns, inserted out of time order."""
    first, second = sorted([uuid.uuid4(), uuid.uuid4()], key=str)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with db_engine.begin() as connection:
        for organization in (first, second):
            connection.execute(
                text("INSERT INTO organizations (id, name, slug) VALUES (:id, :name, :slug)"),
                {"id": str(organization), "name": str(organization), "slug": str(organization)},
            )
        rows = [(first, 2), (second, 1), (first, 0), (second, 0), (first, 1), (None, 0)]
        for organization, n in rows:
            connection.execute(
                text(
                    "INSERT INTO audit_logs (id, organization_id, action, resource_type,"
                    " changes, created_at) VALUES (:id, :org, 'old', 'test', :changes, :at)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "org": str(organization) if organization else None,
                    "changes": json.dumps({"n": n, "ratio": 2.5}),
                    "at": base + timedelta(minutes=n),
                },
            )
    return {first: 3, second: 2}


def test_an_entry_hashes_the_same_after_jsonb_gave_its_changes_back(app: Any, client: Any) -> None:
    admin = register(client)
    with app.extensions["iw"].session_factory() as session:
        session.add(
            AuditLog(
                organization_id=uuid.UUID(admin.organization_id),
                action="numbers",
                resource_type="test",
                changes={"whole": 1.0, "big": 1e20, "small": 1.5e-10, 7: "int key", "é": "ü"},
            )
        )
        session.commit()

    body = admin.get(VERIFY).json

    assert body["valid"] is True, body["first_invalid"]
