"""Our own examples (examples/*.json, wrapped layout) show every step type and item type."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.definition import ITEM_TYPES, STEP_TYPES, is_wrapped

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
OURS = sorted(EXAMPLES.glob("*.json"))


def _steps(steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for step in steps:
        yield step
        for nested in ("parallel", "foreach"):
            if isinstance(step.get(nested), Mapping):
                yield from _steps(step[nested].get("steps") or [])


def _all_steps() -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for path in OURS:
        found.extend(_steps(json.loads(path.read_text())["definition"]["steps"]))
    return found


def test_our_examples_use_the_wrapped_layout() -> None:
    assert OURS
    assert all(is_wrapped(json.loads(path.read_text())) for path in OURS)


def test_our_examples_show_every_step_type_and_item_type() -> None:
    steps = _all_steps()
    assert {step["type"] for step in steps} == STEP_TYPES
    items = {item["type"] for step in steps for item in step.get("execute") or []}
    assert items == ITEM_TYPES
    waits = [step["wait"] for step in steps if step["type"] == "wait"]
    assert any("event" in wait for wait in waits) and any("duration" in wait for wait in waits)
    assert any(step.get("action", {}).get("type") == "require_approval" for step in steps)
