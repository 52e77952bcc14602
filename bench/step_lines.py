"""The code a step passes through: the project's modules and lines a step executes.

    .venv/bin/python bench/step_lines.py [-n 20] [step_profile.py's options]

Runs bench/step_profile.py (in process, through the Celery task: `--via-task`,
one round) with a line tracer switched on only while `run_step_message` runs,
and prints, for each module of the project (api, engine, models, tasks,
workers, monitoring) that a step entered: the distinct lines it executed and
the module's size. The executed lines are the step path as a reader must
follow it, whatever else the modules hold (docstrings, other callers' code);
the module sizes are what the issue's "modules and lines" counted before.
Every kind of step the 5-step no-op workflow has (set steps, the final
action, the first step's read) is included; branches a no-op run never takes
(retries, fan-out, effects) are not.
"""

from __future__ import annotations

import runpy
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "engine", "models", "tasks", "workers", "monitoring")
ENTRY = ("run_step_message", str(ROOT / "tasks" / "steprun.py"))


class LineTracer:
    """Records (file, line) of every line run while ENTRY is on the stack."""

    def __init__(self) -> None:
        self.executed: set[tuple[str, int]] = set()
        self._depth = 0

    def enter(self, frame: FrameType, _event: str, _arg: Any) -> Any:
        code = frame.f_code
        if (code.co_name, code.co_filename) == ENTRY:
            self._depth += 1
        return self.line if self._depth else None

    def line(self, frame: FrameType, event: str, _arg: Any) -> Any:
        if event == "line":
            self.executed.add((frame.f_code.co_filename, frame.f_lineno))
        elif event == "return" and (frame.f_code.co_name, frame.f_code.co_filename) == ENTRY:
            self._depth -= 1
        return self.line


def _module(filename: str) -> str | None:
    path = Path(filename)
    if not path.is_relative_to(ROOT):
        return None
    relative = path.relative_to(ROOT)
    return str(relative) if relative.parts[0] in PACKAGES else None


def main() -> None:
    argv = sys.argv[1:]
    if "-n" not in argv:
        argv = ["-n", "20", *argv]
    sys.argv = [str(ROOT / "bench" / "step_profile.py"), *argv, "--via-task", "--repeat", "1"]
    sys.path.insert(0, str(ROOT / "bench"))
    tracer = LineTracer()
    sys.settrace(tracer.enter)
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        sys.settrace(None)
    by_module = Counter(
        module for filename, _ in tracer.executed if (module := _module(filename)) is not None
    )
    print(f"{'module':40} {'executed':>9} {'lines':>7}")
    for module, count in sorted(by_module.items(), key=lambda item: -item[1]):
        size = len((ROOT / module).read_text().splitlines())
        print(f"{module:40} {count:9d} {size:7d}")
    sizes = sum(len((ROOT / module).read_text().splitlines()) for module in by_module)
    print(
        f"step path: {len(by_module)} modules, {sum(by_module.values())} lines executed,"
        f" {sizes} lines in those modules"
    )


if __name__ == "__main__":
    main()
