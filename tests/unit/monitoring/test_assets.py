"""Alerts, dashboards and Prometheus configs refer only to metrics and labels we export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from monitoring import assets
from monitoring.metrics import CATALOGUE

ALERTS = assets.alert_expressions()
PANELS = assets.dashboard_expressions()
EXPRESSIONS = [(f"alert {name}", expr) for name, expr in ALERTS] + [
    (f"{board}: {title}", expr) for board, title, expr in PANELS
]
TARGET_LABELS = {"job", "instance"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def family_of(name: str) -> str | None:
    """The catalogue family a selected series name belongs to, or None."""
    if name in CATALOGUE:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and CATALOGUE.get(base) and CATALOGUE[base].kind == "histogram":
            return base
    return None


def labels_of(name: str) -> set[str]:
    family = family_of(name)
    if family is None:
        return set()
    extra = {"le"} if name.endswith("_bucket") else set()
    return set(CATALOGUE[family].labels) | TARGET_LABELS | extra


def test_there_are_alerts_and_panels() -> None:
    assert len(ALERTS) >= 15
    assert len(PANELS) >= 40


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS)
def test_expressions_select_only_catalogue_metrics(where: str, expr: str) -> None:
    names = assets.metric_names(expr)
    assert names, where
    for name in names:
        external = assets.EXTERNAL_METRICS.match(name)
        if external and name.startswith("node_"):
            assert where.startswith("alert "), f"{where}: node_* belongs in alerts only"
        assert external or family_of(name), f"{where}: {name} is not in the catalogue"


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS)
def test_expressions_use_only_labels_their_metrics_have(where: str, expr: str) -> None:
    available = set(TARGET_LABELS)
    for name in assets.metric_names(expr):
        if family_of(name):
            available |= labels_of(name)
            for selected, matched in assets.selector_labels(expr):
                if selected == name:
                    assert matched <= labels_of(name), f"{where}: {name}{{{matched}}}"
    if not any(family_of(name) for name in assets.metric_names(expr)):
        return  # node_* / up: labels of other exporters
    assert assets.grouping_labels(expr) <= available, where


def test_expressions_use_plain_ranges_and_no_template_variables() -> None:
    for where, expr in EXPRESSIONS:
        assert "$" not in expr, where


@pytest.mark.parametrize("rule", assets.alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_duration_a_severity_and_annotations(rule: dict[str, object]) -> None:
    assert re.fullmatch(r"\d+[smh]", str(rule["for"]))
    labels = rule["labels"]
    annotations = rule["annotations"]
    assert isinstance(labels, dict)
    assert labels["severity"] in {"critical", "warning", "info"}
    assert isinstance(annotations, dict)
    assert annotations["summary"]
    assert annotations["description"]


def promtool_cases() -> dict[str, dict[str, int]]:
    seen: dict[str, dict[str, int]] = {}
    for path in sorted((assets.ALERTS_DIR / "tests").glob("*.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                counts = seen.setdefault(case["alertname"], {"fires": 0, "silent": 0})
                counts["fires" if case.get("exp_alerts") else "silent"] += 1
    return seen


@pytest.mark.parametrize("name", [name for name, _ in ALERTS])
def test_every_alert_has_promtool_cases_that_fire_and_that_do_not(name: str) -> None:
    counts = promtool_cases().get(name, {"fires": 0, "silent": 0})
    assert counts["fires"] >= 1, counts
    assert counts["silent"] >= 1, counts


@pytest.mark.parametrize(
    ("expr", "inner"),
    [
        ("a > 0.05", "a"),
        ("0.05 < a", "a"),
        ('up{job="x"} == 0', 'up{job="x"}'),
        (
            "(sum(rate(a[5m])) or vector(0)) / sum(rate(b[5m])) > 0.05",
            "(sum(rate(a[5m])) or vector(0)) / sum(rate(b[5m]))",
        ),
        ("(time() - max(t) > 300) or absent(t)", "time() - max(t)"),
        ("max by (q) (x) > 100 and max by (q) (delta(x[10m])) > 0", "max by (q) (x)"),
        ('rate(x{path=~"/a|/b", s!="5"}[5m]) >= bool 1', 'rate(x{path=~"/a|/b", s!="5"}[5m])'),
        (
            "histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))",
            "histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))",
        ),
        ("sort_desc(error_or_not) > 1", "sort_desc(error_or_not)"),
    ],
)
def test_inner_query_strips_the_threshold(expr: str, inner: str) -> None:
    assert assets.inner_query(expr) == inner


def test_every_alert_has_an_inner_query_without_threshold() -> None:
    for name, expr in ALERTS:
        inner = assets.inner_query(expr)
        assert inner != expr, name
        assert not re.search(r"[<>]=?\s*[\d.]+\s*$", inner), name


def test_metric_names_skip_functions_labels_and_keywords() -> None:
    expr = (
        'sum by (le, path) (rate(http_request_duration_seconds_bucket{job="a",path=~"x"}[5m]))'
        " / on (path) group_left() up offset 5m or vector(1e9)"
    )
    assert assets.metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}
    assert assets.grouping_labels(expr) == {"le", "path"}
    assert assets.selector_labels(expr) == [
        ("http_request_duration_seconds_bucket", {"job", "path"})
    ]


def test_the_local_config_file_is_the_rendered_default() -> None:
    assert assets.LOCAL_CONFIG.read_text() == assets.render_local_config()


def test_the_local_config_can_be_rendered_for_other_ports() -> None:
    config = yaml.safe_load(
        assets.render_local_config(
            api_port=18080,
            worker_port=19808,
            flower_port=15555,
            alertmanager_port=19093,
            rule_files=["/abs/alerts/*.yml"],
            scrape_interval="2s",
        )
    )
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    assert targets["workflows-api"] == "127.0.0.1:18080"
    assert targets["workflows-worker"] == "127.0.0.1:19808"
    assert targets["flower"] == "127.0.0.1:15555"
    assert targets["alertmanager"] == "127.0.0.1:19093"
    assert config["rule_files"] == ["/abs/alerts/*.yml"]
    assert config["global"]["scrape_interval"] == "2s"
    assert config["global"]["scrape_timeout"] == "2s"


def test_both_prometheus_configs_scrape_the_same_jobs() -> None:
    def jobs(path: Path) -> list[str]:
        return [job["job_name"] for job in yaml.safe_load(path.read_text())["scrape_configs"]]

    container = jobs(assets.PROMETHEUS_DIR / "prometheus.yml")
    assert container == jobs(assets.LOCAL_CONFIG)
    assert {"workflows-api", "workflows-worker", "flower", "alertmanager", "prometheus"} <= set(
        container
    )


def test_dashboards_are_provisionable_grafana_json() -> None:
    provisioning = assets.ROOT / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    boards = assets.dashboards()
    assert set(boards) == {"api-overview", "workflow-execution", "celery-workers"}
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    for name, board in boards.items():
        assert board["title"], name
        assert board["schemaVersion"] >= 30, name
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == uid, (name, panel["title"])
                assert panel["targets"], (name, panel["title"])


def test_make_up_scrapes_only_the_exporters_it_got_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assets.main(["local-config", "--exporters", "node-exporter=19100"])
    config = yaml.safe_load(capsys.readouterr().out)
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs["node-exporter"] == ["127.0.0.1:19100"]
    assert "postgres-exporter" not in jobs
    assert "redis-exporter" not in jobs
    assets.main(["local-config"])
    none = yaml.safe_load(capsys.readouterr().out)
    assert not [job for job in none["scrape_configs"] if job["job_name"].endswith("-exporter")]
    with pytest.raises(SystemExit):
        assets.main(["local-config", "--exporters", "mystery-exporter=1"])
