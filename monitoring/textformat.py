"""The Prometheus text format of a multiprocess scrape, with label text cached.

``generate_latest`` re-validates and re-escapes every label of every sample at
every scrape; a host's label sets are few and stable (bounded labels), so here
each label set's text is built once, by the same upstream escaping functions,
and reused: kept on the label dict itself when it is a :class:`LabelSet` (the
merged directory's samples, whose label dicts live as long as the files' keys),
else looked up by the label items. Value texts are cached too (bucket counts
repeat). The output is ``generate_latest``'s, byte for byte (a test compares
them); families with OpenMetrics-only samples (``_created``, ``_gsum``,
``_gcount``, which multiprocess files never hold) are handed to it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

_PROMETHEUS_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}
_PROMETHEUS_TYPES |= {"summary": "summary", "unknown": "untyped"}
_OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")
_CACHE_LIMIT = 200_000
_VALUE_CACHE_LIMIT = 20_000
_label_text: dict[tuple[tuple[str, str], ...], str] = {}
_names: dict[str, str] = {}
_value_text: dict[float, str] = {}


class LabelSet(dict[str, str]):
    """A sample's labels that are reused from scrape to scrape, with their text.

    Never change one after it is made: its text is computed once, at its first render.
    """

    __slots__ = ("text",)

    def __init__(self, labels: dict[str, str]) -> None:
        super().__init__(labels)
        self.text: str | None = None


def _labels(items: tuple[tuple[str, str], ...]) -> str:
    text = _label_text.get(items)
    if text is None:
        text = ",".join(
            f'{_label_name(name)}="{_label_value(value)}"' for name, value in sorted(items)
        )
        text = "{" + text + "}" if text else ""
        if len(_label_text) >= _CACHE_LIMIT:
            _label_text.clear()
        _label_text[items] = text
    return text


def _value(value: float) -> str:
    if value == 0.0:  # 0.0 and -0.0 are one key but two texts: not cached
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = _value_text.get(value)
    if text is None:
        text = floatToGoString(value)
        # NaN never equals itself, so it is never found: not kept.
        if not math.isnan(value):
            if len(_value_text) >= _VALUE_CACHE_LIMIT:
                _value_text.clear()
            _value_text[value] = text
    return text


def _label_name(name: str) -> str:
    return str(openmetrics.escape_label_name(name, openmetrics.UNDERSCORES))


def _label_value(value: str) -> str:
    # Label values are always UTF-8 in the text format: generate_latest escapes them
    # with openmetrics._escape(value, ALLOWUTF8, ...), which is exactly this.
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _name(name: str) -> str:
    escaped = _names.get(name)
    if escaped is None:
        escaped = _names[name] = openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES)
    return escaped


class _One:
    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> list[Metric]:
        return [self._metric]


def _is_plain(metric: Metric) -> bool:
    if metric.type not in _PROMETHEUS_TYPES:
        return False
    suffixed = tuple(metric.name + suffix for suffix in _OPENMETRICS_SUFFIXES)
    return not any(sample.name in suffixed for sample in metric.samples)


def render_text(families: Iterable[Metric]) -> bytes:
    """What ``generate_latest`` would answer for ``families``."""
    output: list[str] = []
    for metric in families:
        if not _is_plain(metric):
            output.append(generate_latest(_One(metric)).decode("utf-8"))
            continue
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        output.append(f"# HELP {_name(name)} {documentation}\n")
        output.append(f"# TYPE {_name(name)} {_PROMETHEUS_TYPES[metric.type]}\n")
        for sample in metric.samples:
            labels = sample.labels
            if type(labels) is LabelSet:
                text = labels.text
                if text is None:
                    text = labels.text = _labels(tuple(labels.items()))
            else:
                text = _labels(tuple(labels.items())) if labels else ""
            timestamp = ""
            if sample.timestamp is not None:
                timestamp = f" {int(float(sample.timestamp) * 1000):d}"
            output.append(f"{_name(sample.name)}{text} {_value(sample.value)}{timestamp}\n")
    return "".join(output).encode("utf-8")
