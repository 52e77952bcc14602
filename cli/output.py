"""How results are shown: aligned tables and `key: value` blocks, or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import click

MAX_CELL = 60
Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def emit_json_line(data: Any) -> None:
    click.echo(json.dumps(data, default=str, ensure_ascii=False, separators=(",", ":")))


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    cells = [[cell(get(row)) for _, get in columns] for row in rows]
    headers = [title for title, _ in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row_cells in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row_cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def emit_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], empty: str = "nothing found"
) -> None:
    if not rows:
        click.echo(empty)
        return
    click.echo(render_table(rows, columns))


def emit_page_footer(page: Mapping[str, Any], shown: int) -> None:
    total = page.get("total", shown)
    if total > shown:
        number = page.get("page", 1)
        click.echo(f"({shown} of {total}; page {number}, --page {number + 1} for more)")


def emit_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        click.echo(f"{(label + ':').ljust(width + 1)} {_field(value)}")


def _field(value: Any) -> str:
    if isinstance(value, dict | list) and value:
        return json.dumps(value, default=str, ensure_ascii=False)
    return cell(value) if not isinstance(value, str) else (value or "-")


def timestamp(value: Any) -> str:
    """`2026-11-27T05:55:32.123+00:00` -> `2026-11-27 05:55:32`."""
    if not value:
        return ""
    text = str(value).replace("T", " ")
    return text[:19]


def duration(milliseconds: Any) -> str:
    if milliseconds is None:
        return ""
    ms = float(milliseconds)
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{minutes:.0f}m{seconds:02.0f}s"
