"""How the API serves the console (api/console.py), with a stand-in build."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

pytestmark = pytest.mark.e2e


class Answer(NamedTuple):
    status: int
    mimetype: str
    headers: dict[str, str]
    body: Any


def fetch(client: Any, path: str, method: str = "get") -> Answer:
    """Read and close the response (a streamed file left open is a ResourceWarning)."""
    with getattr(client, method)(path) as response:
        body = response.get_json(silent=True) if response.is_json else response.get_data()
        return Answer(response.status_code, response.mimetype, dict(response.headers), body)


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets").mkdir()
    page = '<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>'
    (tmp_path / "index.html").write_text(page)
    (tmp_path / "assets" / "app-1a2b.js").write_text("console.log('app')")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    monkeypatch.setenv("WEB_DIST_DIR", str(tmp_path))
    return tmp_path


def test_the_app_answers_every_console_path(client: Any, dist: Path) -> None:
    for path in ["/", "/workflows", "/executions/3f1c/trace", "/apix", "/metrics-dashboard"]:
        answer = fetch(client, path)
        assert answer.status == 200, path
        assert answer.mimetype == "text/html"
        assert b"/assets/app-1a2b.js" in answer.body
        assert answer.headers["Cache-Control"] == "no-cache"
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]


def test_hashed_assets_are_cached_for_a_year(client: Any, dist: Path) -> None:
    answer = fetch(client, "/assets/app-1a2b.js")
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert fetch(client, "/assets/missing.js").body["code"] == 404
    assert fetch(client, "/favicon.svg").mimetype == "image/svg+xml"


def test_api_paths_keep_their_own_answers(client: Any, dist: Path) -> None:
    assert fetch(client, "/api/v1/no-such-thing").body["code"] == 404
    assert fetch(client, "/api").body["code"] == 404
    assert fetch(client, "/api/v1/workflows", "delete").status == 405
    assert fetch(client, "/health").body == {"status": "ok"}
    assert fetch(client, "/metrics").mimetype.startswith("text/plain")
    assert fetch(client, "/api/v1/openapi.json").body["info"]["title"] == "Intelligent Workflows"


def test_without_a_build_the_root_says_so_in_the_error_shape(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_DIST_DIR", str(tmp_path / "nothing"))
    answer = fetch(client, "/")
    assert answer.status == 404
    assert answer.body["code"] == 404
    assert answer.body["status"] == "Not Found"
    assert "not built" in answer.body["message"]
    assert "make web-build" in answer.body["message"]
