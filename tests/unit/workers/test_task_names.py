"""The worker starts the celery_* counters of every task it runs, not only the step task."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from celery import Celery

from models.config import load_settings
from workers.app import TASK_MODULES, celery_config
from workers.signals import _our_task_names


def test_every_registered_workflow_task_is_preinitialised() -> None:
    app = Celery("names-test", set_as_current=False)
    app.conf.update(celery_config(load_settings({})))
    for module in TASK_MODULES:
        importlib.import_module(module)  # registers the shared tasks on every app

    names = _our_task_names(SimpleNamespace(app=app))

    assert set(names) >= {
        "workflows.run_step",
        "workflows.relay_outbox",
        "workflows.sweep_stuck",
        "workflows.expire_approvals",
        "workflows.notify_approval",
        "workflows.resume_due",
        "workflows.fire_schedules",
        "workflows.run_shadow",
    }
    assert all(name.startswith("workflows.") for name in names)


def test_a_sender_without_an_app_still_gets_the_dispatch_tasks() -> None:
    assert "workflows.run_step" in _our_task_names(None)
