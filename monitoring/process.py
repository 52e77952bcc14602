"""``process_*`` figures for a whole process tree, read from ``/proc`` at scrape time.

In multiprocess mode each gunicorn or Celery pool process has its own
ProcessCollector that nobody scrapes, and the aggregated registry has none. The
serving process therefore reads ``/proc`` for the tree rooted at the host's
master (gunicorn arbiter, Celery main process), which covers every process the
target runs:

* resident/virtual memory and open fds: summed over the live processes. Shared
  copy-on-write pages are counted once per process, as ``ps`` would.
* CPU seconds: ``utime + stime + cutime + cstime`` summed over the live
  processes. The kernel adds a reaped child's whole CPU time (its own and its
  reaped descendants') into its parent's ``cutime``/``cstime``, so work done by
  recycled workers is kept and the total only grows. Two reads of several
  processes are not atomic: a child reaped between them may be missed once or
  counted twice. ``exposition.py`` therefore exports the high-water mark of this
  value (a ``max`` gauge shared by all processes through the multiprocess
  directory), which never goes backwards while the directory lives.

Linux only: elsewhere :func:`sample_process_tree` returns ``None`` and the
process_* families are omitted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

_PROC = "/proc"


@dataclass(frozen=True)
class ProcessTreeSample:
    processes: int
    cpu_seconds: float
    resident_memory_bytes: int
    virtual_memory_bytes: int
    open_fds: int
    start_time_seconds: float


@dataclass(frozen=True)
class _Stat:
    cpu_ticks: int
    start_ticks: int
    virtual_bytes: int
    resident_pages: int


@cache
def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


@cache
def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


@cache
def _boot_time(proc: str) -> float:
    with open(os.path.join(proc, "stat"), encoding="ascii") as stat:
        for line in stat:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _read_stat(proc: str, pid: int) -> _Stat:
    with open(os.path.join(proc, str(pid), "stat"), encoding="utf-8", errors="replace") as stat:
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat.read().rpartition(")")[2].split()
    # fields[0] is field 3 (state) of proc(5).
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return _Stat(
        cpu_ticks=utime + stime + cutime + cstime,
        start_ticks=int(fields[19]),
        virtual_bytes=int(fields[20]),
        resident_pages=int(fields[21]),
    )


def _children(proc: str, pid: int) -> list[int]:
    children: list[int] = []
    for tid in os.listdir(os.path.join(proc, str(pid), "task")):
        path = os.path.join(proc, str(pid), "task", tid, "children")
        with open(path, encoding="ascii") as listing:
            children.extend(int(child) for child in listing.read().split())
    return children


def _open_fds(proc: str, pid: int) -> int:
    try:
        return len(os.listdir(os.path.join(proc, str(pid), "fd")))
    except PermissionError:
        return 0


def _descendants(proc: str, root_pid: int) -> list[int]:
    tree, pending = [root_pid], [root_pid]
    while pending:
        try:
            found = _children(proc, pending.pop())
        except FileNotFoundError:  # exited while we walked
            continue
        tree.extend(found)
        pending.extend(found)
    return tree


def sample_process_tree(root_pid: int, proc: str = _PROC) -> ProcessTreeSample | None:
    """Sum the process figures of ``root_pid`` and its descendants."""
    if not os.path.isdir(os.path.join(proc, str(root_pid))):
        return None
    cpu_ticks = resident_pages = virtual_bytes = fds = processes = 0
    root_start = 0
    for pid in _descendants(proc, root_pid):
        try:
            stat = _read_stat(proc, pid)
            fds += _open_fds(proc, pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        processes += 1
        cpu_ticks += stat.cpu_ticks
        resident_pages += stat.resident_pages
        virtual_bytes += stat.virtual_bytes
        if pid == root_pid:
            root_start = stat.start_ticks
    if not processes:
        return None
    ticks = _clock_ticks()
    return ProcessTreeSample(
        processes=processes,
        cpu_seconds=cpu_ticks / ticks,
        resident_memory_bytes=resident_pages * _page_size(),
        virtual_memory_bytes=virtual_bytes,
        open_fds=fds,
        start_time_seconds=_boot_time(proc) + root_start / ticks,
    )
