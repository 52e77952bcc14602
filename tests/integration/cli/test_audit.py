"""iwctl audit verify, against a running API."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.stack import Stack
from tests.integration.cli.conftest import Account, Iwctl

pytestmark = pytest.mark.integration


def _organization_of(stack: Stack, account: Account) -> str:
    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as connection:
            return str(
                connection.execute(
                    text(
                        "SELECT m.organization_id FROM memberships m JOIN users u"
                        " ON u.id = m.user_id WHERE u.username = :name"
                    ),
                    {"name": account.username},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_verify_reports_an_intact_chain_and_its_head(cli: Iwctl) -> None:
    result = cli.ok("audit", "verify")
    answer = cli.ok("audit", "verify", "--json").json()

    assert "valid:" in result.stdout and "yes" in result.stdout
    assert answer["head"]["hash"] in result.stdout
    assert "AUDIT_SIGNING_KEY is not configured" in result.stdout
    assert answer["valid"] is True
    assert answer["head"]["position"] == answer["entries_checked"] >= 2
    anchored = cli.ok(
        "audit",
        "verify",
        "--anchor-position",
        str(answer["head"]["position"]),
        "--anchor-hash",
        answer["head"]["hash"],
    )
    assert "Traceback" not in anchored.stderr


def test_verify_exits_4_at_the_entry_edited_in_postgres(
    cli: Iwctl, account: Account, stack: Stack
) -> None:
    organization = _organization_of(stack, account)
    engine = create_engine(stack.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE audit_logs SET action = 'forged' WHERE organization_id = :org"
                    " AND chain_position = 1"
                ),
                {"org": organization},
            )
    finally:
        engine.dispose()

    result = cli("audit", "verify")

    assert result.exit_code == 4, result
    assert "broken at position 1 (content_mismatch)" in result.stderr
    assert "valid:" in result.stdout


def test_a_half_anchor_is_a_usage_error(cli: Iwctl) -> None:
    result = cli("audit", "verify", "--anchor-position", "3")

    assert result.exit_code == 1
    assert "go together" in result.stderr
