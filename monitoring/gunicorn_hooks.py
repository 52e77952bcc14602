"""The gunicorn server hooks every host of the app uses (gunicorn.conf.py for the API,
gunicorn_streams.conf.py for the stream service): its metric files per run and per
worker. They import lazily: a config file is read before the workers exist, and
prometheus_client must see PROMETHEUS_MULTIPROC_DIR when it is first imported.
"""

from __future__ import annotations

import os
from typing import Any


def on_starting(server: Any) -> None:
    """Wipe this host's metric files: the counters of a previous run must not leak in."""
    from monitoring.multiprocess import prepare_directory

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        prepare_directory(directory)


def child_exit(server: Any, worker: Any) -> None:
    """Mark the dead worker and fold its counters into the archive."""
    from monitoring.multiprocess import retire_process

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        retire_process(worker.pid, directory)
