"""Malformed input never crashes validation, and what validates can be dry-run."""

import copy
import json
import random
from datetime import UTC, datetime

from engine.definition import Definition
from engine.dryrun import dry_run
from engine.errors import DefinitionError
from engine.state import ApprovalStatus
from engine.templating import TemplateRenderer
from engine.validation import validate_workflow
from tests.unit.engine.fakes import EXAMPLES_DIR

GARBAGE = [None, 0, -1, True, 1.5, "", "x", "1h", "{{", [], ["x"], {}, {"type": ["x"]}]
EXAMPLES = [json.loads(p.read_text()) for p in sorted(EXAMPLES_DIR.glob("*.json"))]
SECRET = "fuzz-secret-value"


def json_paths(value, path=()):
    yield path
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        yield from json_paths(child, (*path, key))


def mutated(rng):
    raw = copy.deepcopy(rng.choice(EXAMPLES))
    for _ in range(rng.randint(1, 3)):
        *parents, last = rng.choice([p for p in json_paths(raw) if p])
        target = raw
        for key in parents:
            target = target[key]
        target[last] = copy.deepcopy(rng.choice(GARBAGE))
    return raw


def test_mutated_examples_either_validate_or_raise_definition_error_and_dry_run_cleanly():
    rng = random.Random(20240501)
    renderer = TemplateRenderer(secrets={"fraud_api_token": SECRET})
    validated = 0
    for _ in range(400):
        raw = mutated(rng)
        try:
            definition = Definition.from_dict(validate_workflow(raw)["definition"])
        except DefinitionError:
            continue
        validated += 1
        approvals = {
            s.id: rng.choice([ApprovalStatus.APPROVED, ApprovalStatus.REJECTED])
            for s in definition.steps
        }
        report = dry_run(
            definition,
            {"order": {"total": 20000}, "quote": {"total": 9000, "hours_until_expiration": 0}},
            now=datetime(2024, 1, 1, tzinfo=UTC),
            renderer=renderer,
            approvals=approvals,
            events={s.id: {"quote": {"rep_decision": "approved"}} for s in definition.steps},
        )
        assert SECRET not in json.dumps(report.to_dict())
    assert validated > 20
