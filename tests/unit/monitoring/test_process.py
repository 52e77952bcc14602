"""process_* figures for a process tree, from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from monitoring.process import sample_process_tree


def test_the_tree_includes_live_children() -> None:
    alone = sample_process_tree(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        family = sample_process_tree(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert alone is not None
    assert family is not None
    assert family.processes == alone.processes + 1
    assert family.resident_memory_bytes > alone.resident_memory_bytes
    assert family.open_fds > 0
    assert abs(family.start_time_seconds - alone.start_time_seconds) < 1


def test_cpu_of_reaped_children_is_kept() -> None:
    before = sample_process_tree(os.getpid())
    burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # exits and is reaped
    after = sample_process_tree(os.getpid())
    assert before is not None
    assert after is not None
    assert after.cpu_seconds - before.cpu_seconds >= 0.3


def test_a_missing_root_gives_no_sample() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert sample_process_tree(child.pid) is None
