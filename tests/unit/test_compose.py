"""docker-compose.yml cannot run here (no Docker engine): check it structurally."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "api",
    "streams",
    "worker",
    "beat",
    "flower",
    "postgres",
    "redis",
    "prometheus",
    "alertmanager",
    "grafana",
    "postgres-exporter",
    "redis-exporter",
    "node-exporter",
}
EXPECTED_PORTS = {
    "api": "8080",
    "worker": "9808",
    "flower": "5555",
    "prometheus": "9090",
    "alertmanager": "9093",
    "grafana": "3000",
    "postgres-exporter": "9187",
    "redis-exporter": "9121",
    "node-exporter": "9100",
}
HEALTHCHECKED = {
    "api",
    "streams",
    "worker",
    "beat",
    "flower",
    "postgres",
    "redis",
    "prometheus",
    "alertmanager",
    "grafana",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_of_the_stack_is_described(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= REQUIRED


def test_services_publish_the_ports_prometheus_scrapes(compose: dict[str, Any]) -> None:
    for service, port in EXPECTED_PORTS.items():
        published = [str(p).split(":")[-1] for p in compose["services"][service].get("ports", [])]
        assert port in published, (service, published)
    prometheus = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for target in targets:
        host, port = target.split(":")
        if host == "localhost":
            continue
        assert host in compose["services"], target
        assert port in {
            str(p).split(":")[-1] for p in compose["services"][host].get("ports", [])
        } or (host == "prometheus"), target


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for service in HEALTHCHECKED:
        assert "healthcheck" in compose["services"][service], service


def test_every_mounted_host_path_exists(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(("./", "/")):
                if source == "/":
                    continue
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in named, (name, source)


def test_app_services_run_commands_that_exist(compose: dict[str, Any]) -> None:
    assert (ROOT / "Dockerfile").exists()
    assert (ROOT / "gunicorn.conf.py").exists()
    assert (ROOT / "gunicorn_streams.conf.py").exists()
    for name in ("api", "streams", "worker", "beat", "flower", "migrate"):
        command = compose["services"][name]["command"]
        if "-A" in command:
            assert command[command.index("-A") + 1] == "workers.app"
    for module in ("api/wsgi.py", "workers/app.py", "models/manage.py"):
        assert (ROOT / module).exists(), module


def _compose_command() -> list[str]:
    """Debian's docker-compose (v1), else the Docker CLI's compose plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    pytest.fail("no compose tool: make test installs Debian's docker-compose (as root)")


def test_docker_compose_config_accepts_the_file() -> None:
    result = subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        env={"JWT_SECRET": "x" * 32, "FLOWER_BASIC_AUTH": "admin:secret", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_flower_asks_for_a_login(compose: dict[str, Any]) -> None:
    environment = compose["services"]["flower"]["environment"]
    assert "FLOWER_BASIC_AUTH" in environment
    assert "FLOWER_UNAUTHENTICATED_API" not in environment


def test_the_image_builds_the_console_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = [line.split() for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0][1].startswith("node:")
    assert "RUN npm ci" in dockerfile
    assert "COPY --from=web /web/dist" in dockerfile
    assert "WEB_DIST_DIR=/app/web/dist" in dockerfile
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user and user[-1] not in {"root", "0"}
    # Only the services that serve /metrics write metric files (not Flower, not beat).
    assert "PROMETHEUS_MULTIPROC_DIR=" not in dockerfile
