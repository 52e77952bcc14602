"""promtool and amtool accept our configs and every alert's unit tests pass.

The tools are installed by ``make test`` (Debian prometheus, prometheus-alertmanager):
a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from monitoring import assets


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install prometheus prometheus-alertmanager)")
    return path


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_alert_rules_are_valid() -> None:
    files = sorted(str(p) for p in assets.ALERTS_DIR.glob("*.yml"))
    assert len(files) == 4
    run(tool("promtool"), "check", "rules", *files)


def test_alert_unit_tests_pass() -> None:
    files = sorted(str(p) for p in (assets.ALERTS_DIR / "tests").glob("*.yml"))
    assert len(files) == 4
    run(tool("promtool"), "test", "rules", *files)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_prometheus_configs_are_valid_and_find_the_rules(config: str) -> None:
    output = run(tool("promtool"), "check", "config", str(assets.PROMETHEUS_DIR / config))
    assert "SUCCESS: 4 rule files found" in output


def test_a_rendered_local_config_with_absolute_rule_paths_is_valid(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        assets.render_local_config(
            api_port=18080, rule_files=[str(assets.ALERTS_DIR / "*.yml")], scrape_interval="5s"
        )
    )
    output = run(tool("promtool"), "check", "config", str(config))
    assert "SUCCESS: 4 rule files found" in output


def test_alertmanager_config_is_valid() -> None:
    run(tool("amtool"), "check-config", str(assets.ROOT / "alertmanager" / "alertmanager.yml"))
