"""Reading what the user hands over: workflow files and `JSON|@file` arguments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cli.errors import UserError


def read_text(path: str) -> str:
    """The file's text; `-` reads standard input."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"cannot read {path}: not UTF-8 text") from exc


def parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def load_object(path: str) -> dict[str, Any]:
    """A JSON object from a file (a workflow)."""
    value = parse_json(read_text(path), path)
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def parse_payload(argument: str | None, option: str = "--payload") -> dict[str, Any]:
    """`--payload '{"a": 1}'`, `--payload @file.json` or `--payload @-` (stdin)."""
    if argument is None or argument.strip() == "":
        return {}
    if argument.startswith("@"):
        source = argument[1:]
        value = parse_json(read_text(source), source if source != "-" else "stdin")
    else:
        value = parse_json(argument, option)
    if not isinstance(value, dict):
        raise UserError(f"{option}: expected a JSON object, got {type(value).__name__}")
    return value


def read_ndjson(path: str) -> list[tuple[int, dict[str, Any]]]:
    """The JSON objects of a file with one a line (`-`: standard input), with their
    line numbers; blank lines are skipped. Any other line fails the whole file."""
    source = path if path != "-" else "stdin"
    objects = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        value = parse_json(line, f"{source} line {number}")
        if not isinstance(value, dict):
            raise UserError(
                f"{source} line {number}: expected a JSON object, got {type(value).__name__}"
            )
        objects.append((number, value))
    return objects
