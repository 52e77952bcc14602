"""audit verify: check the organization's tamper-evident audit chain."""

from __future__ import annotations

from typing import Any

import click

from cli.context import Context, common_options, pass_context
from cli.errors import CheckFailed, UserError
from cli.output import emit_fields, emit_json


@click.group()
def audit() -> None:
    """The audit log: verify its hash chain."""


@audit.command()
@click.option(
    "--anchor-position",
    type=click.IntRange(min=1),
    help="Position of a chain head you recorded earlier (with --anchor-hash).",
)
@click.option("--anchor-hash", help="The hash recorded for --anchor-position.")
@common_options
@pass_context
def verify(ctx: Context, anchor_position: int | None, anchor_hash: str | None) -> None:
    """Walk the audit chain and report the first entry that does not match.

    Prints the chain head (position and hash) and its signed export: record them
    outside the database and pass them back as --anchor-position/--anchor-hash
    to also detect a rewrite of the whole chain. Exits 4 when the chain is broken.
    """
    if (anchor_position is None) != (anchor_hash is None):
        raise UserError("--anchor-position and --anchor-hash go together")
    params = {"anchor_position": anchor_position, "anchor_hash": anchor_hash}
    answer = ctx.client.get("/audit-logs/verify", params)
    if ctx.json:
        emit_json(answer)
    else:
        emit_fields(_summary(answer))
    if not answer["valid"]:
        broken = answer["first_invalid"]
        raise CheckFailed(
            f"the audit chain is broken at position {broken['position']}"
            f" ({broken['reason']}): {broken['detail']}"
        )


def _summary(answer: dict[str, Any]) -> list[tuple[str, Any]]:
    head = answer["head"] or {}
    signed = answer["signed_head"]
    pairs: list[tuple[str, Any]] = [
        ("valid", answer["valid"]),
        ("entries checked", answer["entries_checked"]),
        ("head position", head.get("position", 0)),
        ("head hash", head.get("hash")),
    ]
    if answer["first_invalid"]:
        broken = answer["first_invalid"]
        pairs += [
            ("first invalid", f"position {broken['position']}: {broken['reason']}"),
            ("entry", broken["entry_id"]),
        ]
    if signed["signature"]:
        pairs += [
            ("signature", f"{signed['algorithm']} {signed['signature']}"),
            ("key id", signed["key_id"]),
            ("signed payload", signed["payload"]),
        ]
    else:
        pairs.append(("signature", f"none: {signed['unsigned_reason']}"))
    return pairs
