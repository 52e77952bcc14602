"""The example workflows and sample payloads that exercise their branches.

Examples are read from the repository's `examples/` (every `*.json` below it that is
a workflow) or, until that folder exists, from `../shared/examples/original`, so a
new example is picked up without an edit here. Each gets payloads derived from its
own conditions (each compared field just below, at and just above its literal value,
and missing) plus, for the seven original examples, the hand-written payloads of the
engine's unit tests, which reach the deeper branches (conditions compared with a
template, parallel checks failing).

`https://<host>.example.com` in a workflow or payload is pointed at the local HTTP
sink (`<sink>/<host>.example.com`), as the end-to-end example tests do.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.engine import test_dryrun_examples as unit

ROOT = Path(__file__).resolve().parents[3]
_EXAMPLE_HOST = re.compile(r"https://([a-z0-9.-]+\.example\.com)")
# Context the platform adds or a later step writes: a payload cannot steer these.
_NOT_FROM_PAYLOAD = ("steps.", "approvals.", "events.", "execution.", "workflow.", "now")
MAX_DERIVED = 12


def examples_dir() -> Path:
    own = ROOT / "examples"
    if own.is_dir() and any(own.rglob("*.json")):
        return own
    return ROOT.parent / "shared" / "examples" / "original"


def example_files() -> list[Path]:
    return sorted(p for p in examples_dir().rglob("*.json") if _is_workflow(p))


def _is_workflow(file: Path) -> bool:
    try:
        body = json.loads(file.read_text())
    except ValueError:
        return False
    return isinstance(body, dict) and ("steps" in body or "steps" in body.get("definition", {}))


def point_at_sink(document: Any, sink_url: str) -> Any:
    text = _EXAMPLE_HOST.sub(lambda m: f"{sink_url}/{m.group(1)}", json.dumps(document))
    return json.loads(text)


def load_example(file: Path, sink_url: str) -> dict[str, Any]:
    return dict(point_at_sink(json.loads(file.read_text()), sink_url))


# The unit tests' payloads for the original examples, by file name.
HAND_WRITTEN: dict[str, list[dict[str, Any]]] = {
    "high-value-order-approval": [
        unit.ORDER,
        {**unit.ORDER, "customer": {"tier": "gold"}},
        {"order": {"id": "o-1", "total": 9999.99}},
    ],
    "order-processing-with-timeout": [
        {"order": {"id": "o", "total": -1}},
        {"order": {"id": "o-7", "total": 120}, "customer": {"risk_score": 10}},
        {"order": {"id": "o-7", "total": 120}, "customer": {"risk_score": "70"}},
    ],
    "data-processing-with-timeout": [
        unit.BATCH,
        {**unit.BATCH, "data": {"records_count": 0}},
        {"batch_id": "b-9", "data": {"records_count": 1}},
    ],
    "product-inventory-sync": [
        unit.product(quantity, reorder_point)
        for quantity, reorder_point in ((0, 10), (5, 10), (50, 10), (0, -5))
    ],
    "cart-fraud-detection": [
        unit.CART,
        {**unit.CART, "customer": {**unit.CART["customer"], "carts_created_last_hour": 9}},
    ],
    "quote-expiration-management": [
        unit.quote(hours, reminder_sent)
        for hours, reminder_sent in ((12, False), (0, False), (-3, True), (72, False))
    ],
    "quote-multi-level-approval": [
        unit.QUOTE,
        {**unit.QUOTE, "quote": {**unit.QUOTE["quote"], "total": 100}},
    ],
    # Ours: a shipment whose parcels the foreach records, so the run reaches its waits.
    "shipment-tracking": [
        {
            "shipment": {
                "id": "s-1",
                "signed_by": "Ada",
                "parcels": [{"id": "p-1", "weight_kg": 2}, {"id": "p-2", "weight_kg": 5}],
            }
        },
    ],
}


def sample_payloads(file: Path, workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """The hand-written payloads for this example, then the derived ones, without repeats."""
    samples: list[dict[str, Any]] = []
    for payload in [*HAND_WRITTEN.get(file.stem, []), *derived_payloads(workflow)]:
        if payload not in samples:
            samples.append(payload)
    return samples


def example_cases() -> list[Any]:
    """One pytest case per example and sample payload, named `<file>-<index>`."""
    return [
        pytest.param(file, payload, id=f"{file.stem}-{index}")
        for file in example_files()
        for index, payload in enumerate(sample_payloads(file, json.loads(file.read_text())))
    ]


def derived_payloads(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """Payloads that put each compared field on either side of its literal value: one
    field at a time, then every field at once (below, at, above), and the empty one."""
    variants = [
        (leaf["field"], _values_around(leaf["value"])) for leaf in _literal_leaves(workflow)
    ]
    payloads: list[dict[str, Any]] = [{}]
    for index in range(3):
        together: dict[str, Any] = {}
        for field, values in variants:
            _put(together, field, values[index % len(values)])
        payloads.append(together)
    for field, values in variants:
        for value in values:
            one: dict[str, Any] = {}
            _put(one, field, value)
            payloads.append(one)
    return payloads[:MAX_DERIVED]


def follow_up_payload(workflow: dict[str, Any], match: Any, *, matching: bool) -> dict[str, Any]:
    """The payload of an awaited event: every compared field at its literal value (so an
    `eq` after the wait holds) or, not `matching`, just off it; then the fields of the
    wait's own `match` (its values already rendered) at their value."""
    payload: dict[str, Any] = {}
    for leaf in _literal_leaves(workflow):
        values = _values_around(leaf["value"])
        _put(payload, leaf["field"], values[min(1, len(values) - 1)] if matching else values[0])
    for leaf in _literal_leaves(match):
        values = _values_around(leaf["value"])
        _put(payload, leaf["field"], values[min(1, len(values) - 1)])
    return payload


def _literal_leaves(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict):
        if (
            isinstance(document.get("field"), str)
            and "operator" in document
            and "value" in document
            and "{{" not in json.dumps(document["value"])
            and not document["field"].startswith(_NOT_FROM_PAYLOAD)
        ):
            yield document
        for value in document.values():
            yield from _literal_leaves(value)
    elif isinstance(document, list):
        for value in document:
            yield from _literal_leaves(value)


def _values_around(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value, value]
    if isinstance(value, int | float):
        return [value - 1, value, value + 1]
    if isinstance(value, list) and value:
        return ["none-of-these", copy.deepcopy(value[0])]
    if isinstance(value, str):
        return [value + "-not", value]
    return [value]


def _put(payload: dict[str, Any], field: str, value: Any) -> None:
    *parents, last = field.split(".")
    node = payload
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value
