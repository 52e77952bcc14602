"""Merging the per-process files into families, at every scrape, cheaply.

prometheus_client's ``MultiProcessCollector.merge`` parses every key of every
file (JSON) at every scrape and builds the samples twice; the serving process
then sorts them (``DirectoryCollector``: identical bytes for identical data).
A worker host's scrape is mostly that work (measured: 10,000 executions over
50 workflows, about 6,000 stored values, two thirds of a scrape's CPU).

Here the same aggregation is done in one pass, with each key's parse (names,
labels, bucket bound, sort key) cached for the life of the serving process: the
keys of a host are few and stable (bounded labels), only values change. The
aggregation rules are upstream's, for every file kind:

* counter, summary, histogram: summed over processes; a histogram's buckets are
  made cumulative in bound order and its ``_count`` is the last bucket;
* gauge ``min``/``max``/``sum``/``mostrecent`` (and ``live*``): merged with that
  rule, the ``pid`` label dropped; ``all``/``liveall``: one series per ``pid``.

Samples come out in the order ``DirectoryCollector`` has always given them:
label set, then bucket / count / sum / other, then bound. A test checks the
result equals upstream's merge on the same files, sample for sample.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any, NamedTuple

from prometheus_client import mmap_dict
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

MmapedDict: Any = mmap_dict.MmapedDict

_LabelItems = tuple[tuple[str, str], ...]
_GAUGE_DROPS_PID = {"min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent"}
_GAUGE_DROPS_PID.add("livemostrecent")
_SUFFIX_RANK = (("_bucket", 0), ("_count", 1), ("_sum", 2))
# Keys seen by this process; cleared if a runaway label ever fills it.
_KEY_CACHE_LIMIT = 100_000


class _Key(NamedTuple):
    metric_name: str
    sample_name: str
    labels: _LabelItems  # sorted, without ``le``
    bound: float | None  # a bucket's upper bound
    help_text: str


_keys: dict[str, _Key] = {}
_bound_text: dict[float, str] = {}  # a bucket bound as upstream writes it in ``le``


def _parse(key: str) -> _Key:
    parsed = _keys.get(key)
    if parsed is None:
        metric_name, sample_name, labels, help_text = json.loads(key)
        le = labels.pop("le", None) if sample_name.endswith("_bucket") else None
        bound = None if le is None else float(le)
        if bound is not None and bound not in _bound_text:
            _bound_text[bound] = floatToGoString(bound)
        parsed = _Key(metric_name, sample_name, tuple(sorted(labels.items())), bound, help_text)
        if len(_keys) >= _KEY_CACHE_LIMIT:
            _keys.clear()
        _keys[key] = parsed
    return parsed


class _Family:
    __slots__ = ("buckets", "help_text", "mode", "name", "stamps", "type", "values")

    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name = name
        self.help_text = help_text
        self.type = kind
        self.mode = ""
        # (sample name, labels) -> value; buckets: labels -> bound -> value
        self.values: dict[tuple[str, _LabelItems], float] = {}
        self.buckets: dict[_LabelItems, dict[float, float]] = {}
        self.stamps: dict[tuple[str, _LabelItems], float] = {}


def _kind_and_mode(file: str) -> tuple[str, str, str]:
    parts = os.path.basename(file).split("_")
    kind = parts[0]
    if kind == "gauge":
        return kind, parts[1], parts[2][:-3]
    return kind, "", ""


def aggregate(files: Iterable[str]) -> list[Metric]:
    """The families of ``files`` (read in the order given), merged like upstream's."""
    families: dict[str, _Family] = {}
    for file in files:
        kind, mode, pid = _kind_and_mode(file)
        try:
            entries = MmapedDict.read_all_values_from_file(file)
        except FileNotFoundError:
            if mode.startswith("live"):  # removed by a concurrent mark_process_dead
                continue
            raise
        for raw_key, value, timestamp, _ in entries:
            key = _parse(raw_key)
            family = families.get(key.metric_name)
            if family is None:
                family = families[key.metric_name] = _Family(key.metric_name, key.help_text, kind)
            if kind == "gauge":
                family.mode = mode
                _add_gauge(family, key, mode, pid, value=value, timestamp=timestamp)
            elif key.bound is not None and kind == "histogram":
                per_bound = family.buckets.setdefault(key.labels, {})
                per_bound[key.bound] = per_bound.get(key.bound, 0.0) + value
            else:
                slot = (key.sample_name, key.labels)
                family.values[slot] = family.values.get(slot, 0.0) + value
    return [_metric(families[name]) for name in sorted(families)]


def _add_gauge(
    family: _Family, key: _Key, mode: str, pid: str, *, value: float, timestamp: float
) -> None:
    if mode in _GAUGE_DROPS_PID:
        slot = (key.sample_name, key.labels)
    else:  # all / liveall: a series per process
        slot = (key.sample_name, tuple(sorted((*key.labels, ("pid", pid)))))
    values = family.values
    if mode in {"min", "livemin"}:
        values[slot] = min(values.get(slot, value), value)
    elif mode in {"max", "livemax"}:
        values[slot] = max(values.get(slot, value), value)
    elif mode in {"sum", "livesum"}:
        values[slot] = values.get(slot, 0.0) + value
    elif mode in {"mostrecent", "livemostrecent"}:
        stamp = float(timestamp or 0)
        if family.stamps.get(slot, 0.0) < stamp:
            values[slot] = value
            family.stamps[slot] = stamp
    else:
        values[slot] = value


def _rank(sample_name: str) -> int:
    for suffix, rank in _SUFFIX_RANK:
        if sample_name.endswith(suffix):
            return rank
    return 3


def _metric(family: _Family) -> Metric:
    ordered: list[tuple[_LabelItems, int, float, str, float]] = []
    for (sample_name, labels), value in family.values.items():
        ordered.append((labels, _rank(sample_name), 0.0, sample_name, value))
    for labels, per_bound in family.buckets.items():
        total = 0.0
        for bound in sorted(per_bound):
            total += per_bound[bound]
            ordered.append((labels, 0, bound, family.name + "_bucket", total))
        ordered.append((labels, 1, 0.0, family.name + "_count", total))
    ordered.sort(key=lambda entry: entry[:4])
    metric = Metric(family.name, family.help_text, family.type)
    metric.samples = [
        Sample(name, {**dict(labels), "le": _bound_text[bound]}, value)
        if rank == 0 and name.endswith("_bucket")
        else Sample(name, dict(labels), value)
        for labels, rank, bound, name, value in ordered
    ]
    return metric
