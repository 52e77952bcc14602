"""workflows.run_step: the Celery task that runs one step attempt named by a ticket."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tasks import runtime
from tasks.dispatch import RUN_STEP, Ticket
from tasks.steprun import run_step_message

# acks_late + reject_on_worker_lost: a step whose process dies is delivered again.
RUN_STEP_OPTIONS = {
    "name": RUN_STEP,
    "ignore_result": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
}


@shared_task(**RUN_STEP_OPTIONS)
def run_step(**kwargs: Any) -> str:
    return run_step_message(runtime.current(), Ticket.parse(kwargs))
