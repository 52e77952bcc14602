"""The monitoring assets as data: alert and panel expressions, the local Prometheus config.

Used by the tests (every expression references catalogue metrics only), by the
end-to-end test (every expression returns data from a real Prometheus) and by
``make up``::

    python -m monitoring.assets local-config --api-port 8080 > var/prometheus.yml

PyYAML is only needed here, to read and write our own asset files; nothing on
the metrics path imports this module.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent
ALERTS_DIR = ROOT / "alerts"
DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"
PROMETHEUS_DIR = ROOT / "prometheus"
LOCAL_CONFIG = PROMETHEUS_DIR / "prometheus.local.yml"

# Metrics that come from outside our catalogue and may appear in expressions.
EXTERNAL_METRICS = re.compile(r"^(up|node_\w+)$")


# --- loading --------------------------------------------------------------------------------
def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted(ALERTS_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def alert_expressions() -> list[tuple[str, str]]:
    """(alert name, expression) for every alerting rule."""
    return [(rule["alert"], " ".join(rule["expr"].split())) for rule in alert_rules()]


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows nest their panels


def dashboard_expressions() -> list[tuple[str, str, str]]:
    """(dashboard file stem, panel title, expression) for every panel target."""
    found = []
    for name, dashboard in dashboards().items():
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((name, panel["title"], target["expr"]))
    return found


# --- PromQL, just enough of it --------------------------------------------------------------
_QUOTES = "\"'`"
_OPEN, _CLOSE = "([{", ")]}"
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_SET_OPERATORS = ("or", "unless", "and")  # lowest precedence first
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_WORD = re.compile(r"[A-Za-z0-9_:]")


def _top_level(expr: str) -> Iterator[int]:
    """Indexes of the characters of ``expr`` outside brackets and strings."""
    depth, quote, escaped = 0, "", False
    for index, char in enumerate(expr):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in _QUOTES:
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif depth == 0:
            yield index


def _closing(expr: str, start: int) -> int:
    """Index of the bracket closing ``expr[start]``, or -1."""
    depth, quote = 0, ""
    for index in range(start, len(expr)):
        char = expr[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in _QUOTES:
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                return index
    return -1


def _unwrap(expr: str) -> str:
    expr = expr.strip()
    while expr.startswith("(") and _closing(expr, 0) == len(expr) - 1:
        expr = expr[1:-1].strip()
    return expr


def _split_word(expr: str, word: str) -> tuple[str, str] | None:
    for index in _top_level(expr):
        end = index + len(word)
        if expr[index:end] != word:
            continue
        before = expr[index - 1] if index else " "
        after = expr[end] if end < len(expr) else " "
        if not _WORD.match(before) and not _WORD.match(after):
            return expr[:index], expr[end:]
    return None


def _split_comparison(expr: str) -> tuple[str, str] | None:
    positions = set(_top_level(expr))
    for index in sorted(positions):
        for operator in _COMPARISONS:
            if expr.startswith(operator, index):
                left, right = expr[:index], expr[index + len(operator) :]
                right = re.sub(r"^\s*bool\b", "", right)
                return left, right
    return None


def inner_query(expr: str) -> str:
    """The query under an alert's threshold, which returns data while all is well.

    The rule: drop enclosing parentheses; for a top-level set operation (``or``,
    then ``unless``, then ``and``) keep its left operand and repeat; for a
    top-level comparison keep the side that is not a number literal (the left
    one if neither is). ``a > 0.05`` gives ``a``; ``(x > 300) or absent(x)``
    gives ``x``'s side, ``x``; an expression without a threshold is returned as is.
    """
    expr = _unwrap(" ".join(expr.split()))
    for operator in _SET_OPERATORS:
        parts = _split_word(expr, operator)
        if parts:
            return inner_query(parts[0])
    parts = _split_comparison(expr)
    if parts is None:
        return expr
    left, right = _unwrap(parts[0]), _unwrap(parts[1])
    if _NUMBER.match(left) and not _NUMBER.match(right):
        return right
    return left


_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_TOKEN = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[smhdwy]?|[A-Za-z_:][\w:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}


def _strip_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (function names and labels excluded)."""
    text = _strip_strings(expr)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0].isdigit() or token in _KEYWORDS:
            continue
        if re.match(r"\s*\(", text[match.end() :]):
            continue  # a function or aggregation
        names.add(token)
    return names


def selector_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) for every ``name{...}`` selector."""
    text = _strip_strings(expr)
    return [
        (match.group(1) or "", set(_MATCHER.findall(match.group(2))))
        for match in _SELECTOR.finditer(text)
    ]


def grouping_labels(expr: str) -> set[str]:
    """Label names of every ``by``/``without``/``on``/``ignoring``/``group_*`` clause."""
    labels: set[str] = set()
    for match in _GROUPING.finditer(_strip_strings(expr)):
        labels |= {label.strip() for label in match.group(2).split(",") if label.strip()}
    return labels


# --- the local Prometheus configuration -----------------------------------------------------
DEFAULT_EXPORTER_PORTS = {"postgres-exporter": 9187, "redis-exporter": 9121, "node-exporter": 9100}


def _exporter(text: str) -> tuple[str, int]:
    name, _, port = text.partition("=")
    if name not in DEFAULT_EXPORTER_PORTS or not port.isdigit():
        known = ", ".join(DEFAULT_EXPORTER_PORTS)
        raise argparse.ArgumentTypeError(f"expected NAME=PORT with NAME one of {known}: {text!r}")
    return name, int(port)


def render_local_config(  # noqa: PLR0917 - the harness may pass the ports positionally
    api_port: int = 8080,
    worker_port: int = 9808,
    flower_port: int = 5555,
    alertmanager_port: int = 9093,
    rule_files: Sequence[str] = ("../alerts/*.yml",),
    scrape_interval: str = "15s",
    prometheus_port: int = 9090,
    exporter_ports: dict[str, int] | None = None,
) -> str:
    """The Prometheus configuration for processes on 127.0.0.1, as YAML text.

    Relative ``rule_files`` are resolved by Prometheus against the directory of
    the file the text is written to; pass absolute paths when writing elsewhere.
    ``exporter_ports`` names the exporters to scrape (job name: port); ``None``
    means all of them on their usual ports, ``{}`` none. ``make up`` passes only
    those it got running, so a job is never a target known to be down.
    """
    exporters = DEFAULT_EXPORTER_PORTS if exporter_ports is None else exporter_ports

    def job(name: str, port: int, path: str = "/metrics") -> dict[str, Any]:
        return {
            "job_name": name,
            "metrics_path": path,
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }

    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval if _seconds(scrape_interval) < 10 else "10s",
            "evaluation_interval": scrape_interval,
        },
        "rule_files": list(rule_files),
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            job("workflows-api", api_port),
            job("workflows-worker", worker_port),
            job("flower", flower_port),
            *(job(name, port) for name, port in exporters.items()),
            job("alertmanager", alertmanager_port),
            job("prometheus", prometheus_port),
        ],
    }
    header = "# Generated by monitoring/assets.py render_local_config(); edit that, not this.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    if not match:
        raise ValueError(f"unsupported duration {duration!r}")
    return int(match.group(1)) * units[match.group(2)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m monitoring.assets")
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser("local-config", help="print the local Prometheus config")
    local.add_argument("--api-port", type=int, default=8080)
    local.add_argument("--worker-port", type=int, default=9808)
    local.add_argument("--flower-port", type=int, default=5555)
    local.add_argument("--alertmanager-port", type=int, default=9093)
    local.add_argument("--prometheus-port", type=int, default=9090)
    local.add_argument("--scrape-interval", default="15s")
    local.add_argument("--rule-files", nargs="*", default=[str(ALERTS_DIR / "*.yml")])
    local.add_argument(
        "--exporters",
        nargs="*",
        type=_exporter,
        default=[],
        metavar="NAME=PORT",
        help="exporters to scrape (default: none), e.g. node-exporter=9100",
    )
    commands.add_parser("alerts", help="print every alert expression and its inner query")
    args = parser.parse_args(argv)
    if args.command == "local-config":
        print(
            render_local_config(
                api_port=args.api_port,
                worker_port=args.worker_port,
                flower_port=args.flower_port,
                alertmanager_port=args.alertmanager_port,
                rule_files=args.rule_files,
                scrape_interval=args.scrape_interval,
                prometheus_port=args.prometheus_port,
                exporter_ports=dict(args.exporters),
            ),
            end="",
        )
    else:
        for name, expr in alert_expressions():
            print(f"{name}\n  alert: {expr}\n  inner: {inner_query(expr)}")


if __name__ == "__main__":
    main()
