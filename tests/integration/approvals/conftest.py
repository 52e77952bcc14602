"""The engine fixtures (API in-process, step tasks driven in-process) for approvals tests."""

from tests.integration.engine.conftest import (  # noqa: F401
    admin,
    app,
    engine_settings,
    http_sink,
    rt,
    smtp_sink,
)
