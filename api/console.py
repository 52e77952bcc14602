"""The web console: serves the built single-page app (web/dist) at `/`.

Every path that is not the API's (`/api/...`, `/metrics`, `/health`, `/ready`)
answers index.html, so the app's own routes (`/workflows/...`) survive a
reload; files under `/assets/` are content-hashed by the build and cached for a
year. Without a build, `/` answers a 404 in the one error shape saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

from api.errors import abort
from api.ratelimit import limiter

DEFAULT_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
# Prefixes the console must never shadow: unknown API paths stay the API's 404/405.
RESERVED = ("api", "metrics", "health", "ready")
ASSET_MAX_AGE = 365 * 24 * 3600
ROOT_FILE_MAX_AGE = 3600


class ConsolePathConverter(PathConverter):
    """A path that does not start with a reserved segment."""

    regex = r"(?!(?:" + "|".join(RESERVED) + r")(?:/|$))[^/].*?"


blp = Blueprint("console", __name__)


@blp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["console_path"] = ConsolePathConverter
    # Static files, fetched a handful at a time by a browser: not worth a Redis round trip each.
    limiter.exempt(blp)


def dist_dir() -> Path:
    """Where the build lives: WEB_DIST_DIR, else web/dist next to the api package."""
    return Path(os.environ.get("WEB_DIST_DIR") or DEFAULT_DIST)


def _index() -> Response:
    dist = dist_dir()
    if not (dist / "index.html").is_file():
        abort(
            404,
            "The web console is not built: run `make web-build` (needs Node 20) "
            "and reload. The API itself is at /api/v1.",
        )
    response = send_from_directory(dist, "index.html", max_age=0)
    # Always revalidate the page so a new build's asset names are picked up at once.
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.route("/", methods=["GET"])
def index() -> Response:
    return _index()


@blp.route("/assets/<path:filename>", methods=["GET"])
def asset(filename: str) -> Response:
    response = send_from_directory(dist_dir() / "assets", filename, max_age=ASSET_MAX_AGE)
    response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}, immutable"
    return response


@blp.route("/<console_path:path>", methods=["GET"])
def page(path: str) -> Response:
    """A file at the root of the build (favicon.svg), else the app (its router decides)."""
    dist = dist_dir()
    if "/" not in path and (dist / path).is_file() and path != "index.html":
        return send_from_directory(dist, path, max_age=ROOT_FILE_MAX_AGE)
    return _index()
