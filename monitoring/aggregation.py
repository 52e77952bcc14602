"""Merging the per-process files into families, at every scrape, cheaply.

prometheus_client's ``MultiProcessCollector.merge`` parses every key of every
file (JSON) at every scrape and builds the samples twice; the serving process
then sorts them (``DirectoryCollector``: identical bytes for identical data).
A worker host's scrape is mostly that work (measured: 10,000 executions over
50 workflows, about 3,300 stored values and 3,900 exported samples).

The keys of a host are few and stable (bounded labels); only values change. So
the work that depends on the keys alone is done when they change, not at every
scrape:

* a file's **layout** (its keys, parsed, and where each value sits) is kept per
  path. prometheus_client only ever appends keys to a file and updates values
  in place (our archives are rewritten in the same key order, then appended
  to: ``multiprocess.py``), so a file whose inode and used length are those of
  its layout has the same keys at the same places. The values are then read in
  one C call (``operator.itemgetter`` over the file's bytes as doubles);
  otherwise the file is parsed again by upstream's own reader. (A layout is
  dropped at the first scrape its file is gone at; the one way to fool it is a
  new process taking a dead one's pid, with the freed inode and the same used
  length but other keys, between two scrapes: a pid wrap-around in seconds.)
* the **plan** (which value goes into which series, the families and their
  sorted samples with their label dicts) is kept while the files' layouts stay
  the same; a new key or a new process's file builds a new one.

The aggregation rules are upstream's, for every file kind:

* counter, summary, histogram: summed over processes; a histogram's buckets are
  made cumulative in bound order and its ``_count`` is the last bucket;
* gauge ``min``/``max``/``sum``/``mostrecent`` (and ``live*``): merged with that
  rule, the ``pid`` label dropped; ``all``/``liveall``: one series per ``pid``.

Samples come out in the order ``DirectoryCollector`` has always given them:
label set, then bucket / count / sum / other, then bound. A test checks the
result equals upstream's merge on the same files, byte for byte once rendered.
The label dicts of the samples are the plan's, shared between scrapes, and carry
their rendered text (``textformat.LabelSet``): read them, never change them.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from prometheus_client import mmap_dict
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from monitoring.textformat import LabelSet

# Upstream's parser of a file's bytes (what read_all_values_from_file returns):
# called on the bytes read here, so the layout and the values come from one read.
_read_all_values: Any = mmap_dict._read_all_values

_LabelItems = tuple[tuple[str, str], ...]
_Values = Callable[["memoryview[float]"], Sequence[float]]
_GAUGE_DROPS_PID = {"min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent"}
_GAUGE_DROPS_PID.add("livemostrecent")
_SUFFIX_RANK = (("_bucket", 0), ("_count", 1), ("_sum", 2))
_USED = struct.Struct("i")
_DOUBLE = 8
# Keys seen by this process; cleared if a runaway label ever fills it.
_KEY_CACHE_LIMIT = 100_000


class _Key(NamedTuple):
    metric_name: str
    sample_name: str
    labels: _LabelItems  # sorted, without a bucket's ``le``
    le: str | None  # a ``_bucket`` sample's ``le`` as stored
    help_text: str


_keys: dict[str, _Key] = {}


def _parse(key: str) -> _Key:
    parsed = _keys.get(key)
    if parsed is None:
        metric_name, sample_name, labels, help_text = json.loads(key)
        le = labels.pop("le", None) if sample_name.endswith("_bucket") else None
        parsed = _Key(metric_name, sample_name, tuple(sorted(labels.items())), le, help_text)
        if len(_keys) >= _KEY_CACHE_LIMIT:
            _keys.clear()
        _keys[key] = parsed
    return parsed


class _Layout(NamedTuple):
    identity: tuple[int, int]  # inode, used bytes
    keys: tuple[_Key, ...]
    values: _Values
    timestamps: _Values


_layouts: dict[str, _Layout] = {}


def _getter(indexes: list[int]) -> _Values:
    if not indexes:
        return lambda _: ()
    if len(indexes) == 1:
        only = indexes[0]
        return lambda doubles: (doubles[only],)
    return itemgetter(*indexes)


def _new_layout(data: bytes, identity: tuple[int, int]) -> _Layout:
    entries = list(_read_all_values(data, identity[1]))
    positions = [position for _, _, _, position in entries]
    if any(position % _DOUBLE for position in positions):
        raise RuntimeError("prometheus_client stored a value off an 8-byte boundary")
    return _Layout(
        identity,
        tuple(_parse(key) for key, _, _, _ in entries),
        _getter([position // _DOUBLE for position in positions]),
        _getter([position // _DOUBLE + 1 for position in positions]),
    )


class _FileRead(NamedTuple):
    file: str
    layout: _Layout
    values: Sequence[float]
    timestamps: Sequence[float]


def _read(file: str) -> _FileRead:
    """Like upstream's ``read_all_values_from_file``: the used part of the file, one read."""
    with open(file, "rb") as stream:
        data = stream.read(mmap.PAGESIZE)
        used = _USED.unpack_from(data, 0)[0]
        if used > len(data):
            data += stream.read(used - len(data))
        inode = os.fstat(stream.fileno()).st_ino
    layout = _layouts.get(file)
    if layout is None or layout.identity != (inode, used):
        layout = _layouts[file] = _new_layout(data, (inode, used))
    doubles = memoryview(data)[: len(data) - len(data) % _DOUBLE].cast("d")
    return _FileRead(file, layout, layout.values(doubles), layout.timestamps(doubles))


def _kind_and_mode(file: str) -> tuple[str, str, str]:
    parts = os.path.basename(file).split("_")
    kind = parts[0]
    if kind == "gauge":
        return kind, parts[1], parts[2][:-3]
    return kind, "", ""


def _rule(kind: str, mode: str) -> str:
    if kind != "gauge" or mode in {"sum", "livesum"}:
        return "sum"
    for rule in ("min", "max", "mostrecent"):
        if mode in {rule, "live" + rule}:
            return rule
    return "all"  # all / liveall: a series per process


def _rank(sample_name: str) -> int:
    for suffix, rank in _SUFFIX_RANK:
        if sample_name.endswith(suffix):
            return rank
    return 3


class _Series(NamedTuple):
    sort_key: tuple[_LabelItems, int, float, str]
    name: str
    labels: LabelSet
    slot: int


class _Family:
    __slots__ = ("help_text", "name", "series", "type")

    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name = name
        self.help_text = help_text
        self.type = kind
        self.series: list[_Series] = []

    def metric(self, values: list[float | None]) -> Metric:
        metric = Metric(self.name, self.help_text, self.type)
        metric.samples = [
            Sample(name, labels, value)
            for _, name, labels, slot in self.series
            if (value := values[slot]) is not None  # a mostrecent gauge never set
        ]
        return metric


class _Plan:
    """Which value of which file goes where; built from the files' layouts only."""

    def __init__(self, reads: list[_FileRead]) -> None:
        self.identity = [(read.file, read.layout.identity) for read in reads]
        self.initial: list[float | None] = []
        # Per file: its merge rule and the slot of each of its values.
        self.files: list[tuple[str, list[int]]] = []
        # Per histogram label set: raw bucket slots in bound order, their
        # cumulative slots, the _count slot.
        self.cumulative: list[tuple[list[int], list[int], int]] = []
        self.families: dict[str, _Family] = {}
        slots: dict[tuple[Any, ...], int] = {}
        buckets: dict[tuple[str, _LabelItems], dict[float, int]] = {}
        for read in reads:
            kind, mode, pid = _kind_and_mode(read.file)
            rule = _rule(kind, mode)
            file_slots = []
            for key in read.layout.keys:
                family = self.families.get(key.metric_name)
                if family is None:
                    family = _Family(key.metric_name, key.help_text, kind)
                    self.families[key.metric_name] = family
                if kind == "histogram" and key.le is not None:
                    ident: tuple[Any, ...] = ("bucket", key.metric_name, key.labels, float(key.le))
                else:
                    labels = key.labels
                    if rule == "all":
                        labels = tuple(sorted((*labels, ("pid", pid))))
                    ident = ("value", key.metric_name, key.sample_name, labels, key.le)
                slot = slots.get(ident)
                if slot is None:
                    slot = slots[ident] = self._slot(rule)
                    if ident[0] == "bucket":
                        buckets.setdefault((key.metric_name, key.labels), {})[ident[3]] = slot
                    else:
                        self._add_value(family, key, labels, slot)
                file_slots.append(slot)
            self.files.append((rule, file_slots))
        for (name, labels), per_bound in buckets.items():
            self._add_buckets(self.families[name], labels, per_bound)
        for family in self.families.values():
            family.series.sort(key=lambda series: series.sort_key)

    def _slot(self, rule: str) -> int:
        self.initial.append(0.0 if rule == "sum" else None)
        return len(self.initial) - 1

    def _add_value(self, family: _Family, key: _Key, labels: _LabelItems, slot: int) -> None:
        shown = LabelSet(dict(labels) if key.le is None else {**dict(labels), "le": key.le})
        bound = 0.0 if key.le is None else float(key.le)
        sort_key = (labels, _rank(key.sample_name), bound, key.sample_name)
        family.series.append(_Series(sort_key, key.sample_name, shown, slot))

    def _add_buckets(
        self, family: _Family, labels: _LabelItems, per_bound: dict[float, int]
    ) -> None:
        raw, cumulative = [], []
        bucket_name = family.name + "_bucket"
        for bound in sorted(per_bound):
            slot = self._slot("sum")
            raw.append(per_bound[bound])
            cumulative.append(slot)
            shown = LabelSet({**dict(labels), "le": floatToGoString(bound)})
            family.series.append(_Series((labels, 0, bound, bucket_name), bucket_name, shown, slot))
        count = self._slot("sum")
        count_name = family.name + "_count"
        family.series.append(
            _Series((labels, 1, 0.0, count_name), count_name, LabelSet(dict(labels)), count)
        )
        self.cumulative.append((raw, cumulative, count))

    def values(self, reads: list[_FileRead]) -> list[float | None]:
        merged = list(self.initial)
        stamps: dict[int, float] = {}  # mostrecent: the latest timestamp per slot
        for (rule, slots), read in zip(self.files, reads, strict=True):
            if rule == "sum":
                for slot, value in zip(slots, read.values, strict=True):
                    merged[slot] += value  # type: ignore[operator]  # sum slots start at 0.0
            else:
                _merge_gauges(rule, merged, slots, read, stamps)
        for raw, cumulative, count in self.cumulative:
            total = 0.0
            for source, target in zip(raw, cumulative, strict=True):
                total += merged[source]  # type: ignore[operator]
                merged[target] = total
            merged[count] = total
        return merged


def _merge_gauges(
    rule: str,
    merged: list[float | None],
    slots: list[int],
    read: _FileRead,
    stamps: dict[int, float],
) -> None:
    for slot, value, timestamp in zip(slots, read.values, read.timestamps, strict=True):
        current = merged[slot]
        if rule == "min":
            merged[slot] = value if current is None or value < current else current
        elif rule == "max":
            merged[slot] = value if current is None or value > current else current
        elif rule == "mostrecent":
            stamp = float(timestamp or 0)
            if stamps.get(slot, 0.0) < stamp:
                merged[slot] = value
                stamps[slot] = stamp
        else:
            merged[slot] = value


_plans: list[_Plan] = []  # the last plan (immutable once built: scrapes may run in threads)


def aggregate(files: Iterable[str]) -> list[Metric]:
    """The families of ``files`` (read in the order given), merged like upstream's."""
    reads = []
    for file in files:
        _, mode, _ = _kind_and_mode(file)
        try:
            reads.append(_read(file))
        except FileNotFoundError:
            if mode.startswith("live"):  # removed by a concurrent mark_process_dead
                continue
            raise
    identity = [(read.file, read.layout.identity) for read in reads]
    if not _plans or _plans[0].identity != identity:
        _plans[:] = [_Plan(reads)]
        for gone in set(_layouts) - {read.file for read in reads}:
            _layouts.pop(gone, None)
    plan = _plans[0]
    values = plan.values(reads)
    return [plan.families[name].metric(values) for name in sorted(plan.families)]
