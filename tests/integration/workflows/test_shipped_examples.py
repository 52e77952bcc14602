"""Every workflow in the repository's examples/ is accepted by POST /workflows/validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import register

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FILES = sorted(EXAMPLES.rglob("*.json"))


def test_the_seven_originals_and_our_own_examples_are_shipped() -> None:
    assert len(list((EXAMPLES / "original").glob("*.json"))) == 7
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(EXAMPLES)) for p in FILES])
def test_a_shipped_example_validates_through_the_api(client: Any, path: Path) -> None:
    caller = register(client)
    response = caller.post("/api/v1/workflows/validate", json.loads(path.read_text()))
    assert response.status_code == 200, response.json
    assert response.json["valid"] is True
