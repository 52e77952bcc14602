"""Helpers for the monitoring tests: running multiprocess scenarios in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def run_scenario(tmp_path: Path) -> Callable[[str], Any]:
    """Run ``mp_driver`` SCENARIO with PROMETHEUS_MULTIPROC_DIR set to a fresh directory."""

    def run(scenario: str) -> Any:
        directory = tmp_path / f"multiproc-{scenario}"
        directory.mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-m", "tests.unit.monitoring.mp_driver", scenario],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return run


@pytest.fixture
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render from the default registry, whatever the environment says."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
