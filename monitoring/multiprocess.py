"""The prometheus_client multiprocess directory: preparation, dead processes, reading.

prometheus_client writes one mmap file per process and metric kind
(``counter_<pid>.db``, ``histogram_<pid>.db``, ``gauge_<mode>_<pid>.db``) and a
scrape reads every file, live or dead. Upstream ``mark_process_dead`` removes
only live-gauge files, so with worker recycling the directory and the scrape
time grow without bound. Here a dead process's files are merged into one
archive file per kind and mode (``counter_archive.db``, ``gauge_max_archive.db``,
...), with the semantics the aggregation would have applied anyway:

=====================================  ======================================
file kind                              merged into the archive as
=====================================  ======================================
counter, histogram, summary, gauge sum  value summed per key
gauge max / min                        max / min per key
gauge mostrecent                       the (value, timestamp) with the latest
                                       timestamp
gauge live*, gauge all                 dropped: they describe a live process
                                       (``live*`` is what mark_process_dead
                                       removes; ``all`` would export a stale
                                       per-pid series forever)
=====================================  ======================================

So a scrape after archiving equals the scrape before (after upstream
``mark_process_dead``), counters never go backwards and the directory holds at
most one file per kind per live process plus one archive per kind. Sums are
equal to the last bit for integer-valued samples (event counts, bucket counts);
float sums (a histogram's ``_sum``) may differ in the last bit because the
additions happen in another order.

Concurrency. Writers (metric updates) never lock: a process only writes its own
files and an archived process is dead. Archiving takes an exclusive ``flock`` on
``.archive.lock`` in the directory; reading (:class:`DirectoryCollector`) takes
it shared. Without the shared lock a scrape could read a dead file, then the new
archive that already contains it (double count), or glob a file the archiver
then deletes (upstream raises). The new archive is written to a hidden temp file
(not matched by ``*.db``) and moved into place with ``os.replace``; the dead
files are removed after the replace. A crash between the two (microseconds)
would leave a dead file that a later sweep archives again: a double count, never
a decrease.

Use one directory per host (per pid namespace): :func:`archive_dead_processes`
judges liveness by pid, so processes of another container sharing the directory
would look dead.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import mmap_dict
from prometheus_client.metrics_core import Metric

from monitoring.aggregation import aggregate

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
LOCK_FILE = ".archive.lock"
ARCHIVE_ID = "archive"

_FILE = re.compile(
    r"^(?P<prefix>counter|histogram|summary|gauge_(?P<mode>[a-z]+))_(?P<pid>\d+|archive)\.db$"
)
_SUMMED = {"counter", "histogram", "summary", "gauge_sum"}
_MERGED_GAUGE_MODES = {"sum", "max", "min", "mostrecent"}

_Values = dict[str, tuple[float, float]]

# Untyped upstream helper (the file format is theirs: reuse, do not re-implement).
MmapedDict: Any = mmap_dict.MmapedDict


def multiprocess_dir() -> str | None:
    """The configured directory, or None in single-process mode."""
    return os.environ.get(ENV_VAR) or None


def prepare_directory(path: str) -> None:
    """Create ``path`` and remove metric files left by a previous run.

    Call once per host from the master process (gunicorn ``on_starting``, the
    Celery main process at ``worker_init``), before any child is forked. Only
    metric files are removed, so a mistaken path loses nothing else. The
    calling process's own files are kept: it may have imported the metrics
    already, and its open mmaps would otherwise write to deleted files.
    """
    os.makedirs(path, exist_ok=True)
    for entry in os.scandir(path):
        match = _FILE.match(entry.name)
        if match and match["pid"] == str(os.getpid()):
            continue
        if entry.is_file() and (match or entry.name.endswith(".db.tmp")):
            os.remove(entry.path)


@contextmanager
def directory_lock(path: str, exclusive: bool) -> Iterator[None]:
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def is_process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_process_dead(pid: int, path: str | None = None) -> int:
    """What glue calls when a process exits (gunicorn ``child_exit``, Celery
    ``worker_process_shutdown``): archives it. Returns the files removed."""
    return archive_dead_process(pid, path)


def retire_process(pid: int, path: str | None = None) -> int:
    """Same as :func:`mark_process_dead` (the name gunicorn.conf.py calls)."""
    return archive_dead_process(pid, path)


def archive_dead_process(pid: int, path: str | None = None) -> int:
    """Merge ``pid``'s files into the archives and remove them.

    The process must record nothing more (it has exited, or it is in its last
    shutdown hook: later writes would go to an unlinked file and be lost).
    A no-op without a directory (single-process mode).
    """
    path = path or multiprocess_dir()
    if not path:
        return 0
    with directory_lock(path, exclusive=True):
        return _archive(path, {pid})


def archive_dead_processes(path: str | None = None) -> list[int]:
    """Archive every process that has files in ``path`` and no longer exists
    (e.g. a pool child killed with -9 whose shutdown hook never ran)."""
    path = path or multiprocess_dir()
    if not path or not _dead_pids(path):
        return []
    with directory_lock(path, exclusive=True):
        dead = _dead_pids(path)  # again, under the lock: another process may have done it
        if dead:
            _archive(path, set(dead))
    return sorted(dead)


def _dead_pids(path: str) -> set[int]:
    pids = set()
    for name in os.listdir(path):
        match = _FILE.match(name)
        if match and match["pid"] != ARCHIVE_ID:
            pids.add(int(match["pid"]))
    return {pid for pid in pids if not is_process_alive(pid)}


def _archive(path: str, pids: set[int]) -> int:
    doomed: list[str] = []
    by_prefix: dict[str, list[str]] = {}
    for name in sorted(os.listdir(path)):
        match = _FILE.match(name)
        if not match or match["pid"] == ARCHIVE_ID or int(match["pid"]) not in pids:
            continue
        doomed.append(os.path.join(path, name))
        mode = match["mode"]
        if mode is None or mode in _MERGED_GAUGE_MODES:
            by_prefix.setdefault(match["prefix"], []).append(os.path.join(path, name))
    for prefix, files in by_prefix.items():
        archive = os.path.join(path, f"{prefix}_{ARCHIVE_ID}.db")
        values = _read(archive) if os.path.exists(archive) else {}
        for file in _with_data(files):
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(file):
                values[key] = _merge(prefix, values.get(key), (value, timestamp))
        _write_atomically(archive, values)
    for file in doomed:
        os.remove(file)
    return len(doomed)


def _with_data(files: Iterable[str]) -> list[str]:
    """Skip files still being created: a new process's file is empty until
    MmapedDict has sized it, and upstream's reader fails on an empty file."""
    kept = []
    for file in files:
        try:
            if os.path.getsize(file) > 0:
                kept.append(file)
        except FileNotFoundError:  # a live gauge removed by upstream mark_process_dead
            continue
    return kept


def _read(file: str) -> _Values:
    return {key: (v, ts) for key, v, ts, _ in MmapedDict.read_all_values_from_file(file)}


def _merge(
    prefix: str, old: tuple[float, float] | None, new: tuple[float, float]
) -> tuple[float, float]:
    if old is None:
        return new
    if prefix in _SUMMED:
        return old[0] + new[0], 0.0
    if prefix == "gauge_max":
        return (new[0], 0.0) if new[0] > old[0] else old
    if prefix == "gauge_min":
        return (new[0], 0.0) if new[0] < old[0] else old
    return new if new[1] > old[1] else old  # mostrecent: ties keep the older entry


def _write_atomically(file: str, values: _Values) -> None:
    directory, name = os.path.split(file)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    if os.path.exists(temp):
        os.remove(temp)
    store = MmapedDict(temp)
    try:
        for key, (value, timestamp) in values.items():
            store.write_value(key, value, timestamp)
    finally:
        store.close()
    os.replace(temp, file)


class DirectoryCollector:
    """The directory's families, read under the shared lock, in a fixed order.

    Files are read in sorted order and families and samples are sorted
    (``aggregation.py``), so two scrapes of the same data are byte-identical
    (upstream follows directory order). ``counter_like`` names are gauges in
    the files (a ``max`` gauge keeps them monotonic) exported with the counter type.
    """

    def __init__(self, path: str, counter_like: Iterable[str] = ()) -> None:
        self._path = path
        self._counter_like = frozenset(counter_like)

    def collect(self) -> Iterable[Metric]:
        with directory_lock(self._path, exclusive=False):
            files = _with_data(sorted(glob.glob(os.path.join(self._path, "*.db"))))
            merged = aggregate(files)
        return [self._typed(metric) for metric in merged]

    def _typed(self, metric: Metric) -> Metric:
        if metric.name in self._counter_like and metric.type == "gauge":
            counter = Metric(metric.name.removesuffix("_total"), metric.documentation, "counter")
            counter.samples = metric.samples
            return counter
        return metric
