"""What `iwctl verify` concludes from what it saw: counts, duplicates and latencies.

Pure: it reads the executions and traces the API returned and what the sink
received, and decides. Nothing lost means every accepted event's execution
finished within the bound; nothing repeated means one effect per execution
under one idempotency key (a key never re-used with another body) and no step
transition recorded twice.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cli.verify.sink import Effects

FINISHED = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class Verdict:
    requested: int
    accepted: int
    refused: int
    completed: int
    failed: int
    lost: int
    duplicated_effects: int
    duplicated_transitions: int
    effects_performed: int
    effects_repeated: int
    failed_first_tries: int
    latencies: tuple[float, ...]

    @property
    def ok(self) -> bool:
        return (
            self.refused == 0
            and self.failed == 0
            and self.lost == 0
            and self.duplicated_effects == 0
            and self.duplicated_transitions == 0
            and self.completed == self.requested
        )

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of event-to-finish seconds."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "accepted": self.accepted,
            "refused": self.refused,
            "completed": self.completed,
            "failed": self.failed,
            "lost": self.lost,
            "duplicated_effects": self.duplicated_effects,
            "duplicated_transitions": self.duplicated_transitions,
            "effects_performed": self.effects_performed,
            "effects_repeated": self.effects_repeated,
            "failed_first_tries": self.failed_first_tries,
            "p50_seconds": self.percentile(50),
            "p95_seconds": self.percentile(95),
            "p99_seconds": self.percentile(99),
            "ok": self.ok,
        }


def judge(
    requested: int,
    accepted: Sequence[str],
    executions: Mapping[str, Mapping[str, Any]],
    traces: Mapping[str, Sequence[Mapping[str, Any]]],
    effects: Effects,
) -> Verdict:
    """`accepted`: the execution ids the events started; `executions` and `traces`: as
    the API answered them, by execution id."""
    finished = {
        i: executions[i] for i in accepted if executions.get(i, {}).get("status") in FINISHED
    }
    completed = [
        i
        for i, e in finished.items()
        if e["status"] == "completed" and e.get("result") == "allowed"
    ]
    return Verdict(
        requested=requested,
        accepted=len(accepted),
        refused=requested - len(accepted),
        completed=len(completed),
        failed=len(finished) - len(completed),
        lost=len(accepted) - len(finished),
        duplicated_effects=duplicated_effects(accepted, effects),
        duplicated_transitions=sum(duplicated_transitions(traces.get(i, ())) for i in accepted),
        effects_performed=len(effects.performed),
        effects_repeated=effects.repeats,
        failed_first_tries=effects.failed_first_tries,
        latencies=tuple(
            seconds_between(executions[i]["created_at"], executions[i]["completed_at"])
            for i in completed
        ),
    )


def duplicated_effects(accepted: Sequence[str], effects: Effects) -> int:
    """Keys re-used with another body, plus effects beyond one per execution (a key
    names its execution first: `<execution_id>:<step>:<attempt group>:<item>`)."""
    per_execution = Counter(key.split(":", 1)[0] for key in effects.performed)
    known = set(accepted)
    extra = sum(n - 1 for i, n in per_execution.items() if i in known and n > 1)
    strangers = sum(n for i, n in per_execution.items() if i not in known)
    return len(effects.conflicts) + extra + strangers + effects.without_key


def duplicated_transitions(trace: Sequence[Mapping[str, Any]]) -> int:
    """Step attempts completed more than once within one attempt group: a transition
    taken twice (the unique key forbids the same attempt twice; a second completed
    attempt after a completed one is the same step run again)."""
    completed = Counter(
        (row["step_id"], row.get("branch_key") or "", row.get("attempt_group", 1))
        for row in trace
        if row.get("status") == "completed"
    )
    return sum(n - 1 for n in completed.values() if n > 1)


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
