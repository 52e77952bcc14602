"""The CLI's pure parts: payload parsing, version bumping, error lines, tables, URLs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.client import normalise_api_url
from cli.commands.workflows import next_version
from cli.config import StoredSession, load_session, save_session
from cli.document import parse_payload
from cli.errors import EXIT_API, EXIT_USER, ApiError, ApiRequestError, UserError, api_error
from cli.main import cli
from cli.output import duration, render_table


def test_payloads_are_inline_json_or_files(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"a": 1}')

    assert parse_payload('{"a": 1}') == {"a": 1}
    assert parse_payload(f"@{tmp_path / 'p.json'}") == {"a": 1}
    assert parse_payload(None) == {}


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("{x", "invalid JSON at line 1 column 2"),
        ("[1]", "expected a JSON object"),
        ("@/nope", "cannot read /nope"),
    ],
)
def test_bad_payloads_are_user_errors(argument: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        parse_payload(argument)
    assert caught.value.exit_code == EXIT_USER


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (["1.0.0"], "1.0.1"),
        (["1.0.0", "1.10.0", "1.9.3"], "1.10.1"),
        (["3"], "4"),
        (["v2", "v10"], "v11"),
        (["beta", "1.2"], "1.3"),
    ],
)
def test_the_next_version_bumps_the_highest_numeric_one(versions: list[str], expected: str) -> None:
    assert next_version(versions) == expected


def test_there_is_no_next_version_of_names() -> None:
    with pytest.raises(UserError, match="cannot compute a next version"):
        next_version(["alpha"])


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, ApiRequestError, 1),
        (404, ApiRequestError, 1),
        (409, ApiRequestError, 1),
        (422, ApiRequestError, 1),
        (401, ApiError, 3),
        (403, ApiError, 3),
        (429, ApiError, 3),
        (500, ApiError, 3),
        (503, ApiError, 3),
    ],
)
def test_api_errors_exit_1_for_the_request_and_3_for_the_service(
    status: int, kind: type, code: int
) -> None:
    error = api_error(status, "nope")

    assert type(error) is kind
    assert error.exit_code == code
    assert error.exit_code in {EXIT_USER, EXIT_API}


def test_api_field_errors_become_one_line_per_path() -> None:
    error = api_error(
        422,
        "invalid",
        {"definition.steps[0].next": ["unknown step 'x'"], "payload": {"a": ["bad"]}},
    )

    assert error.details == ["definition.steps[0].next: unknown step 'x'", "payload.a: bad"]


def test_tables_align_columns_and_mark_empty_cells() -> None:
    text = render_table(
        [{"a": "x", "b": None}, {"a": "longer", "b": True}],
        [("A", lambda r: r["a"]), ("B", lambda r: r["b"])],
    )

    assert text.splitlines() == ["A       B", "x       -", "longer  yes"]


def test_durations_read_naturally() -> None:
    assert [duration(v) for v in (None, 12, 1500, 125_000)] == ["", "12ms", "1.5s", "2m05s"]


@pytest.mark.parametrize(
    "url",
    [
        "http://h:8080",
        "http://h:8080/",
        "http://h:8080/api/v1",
        "http://h:8080/api/v1/",
        " h:8080 ",
    ],
)
def test_api_urls_are_normalised_to_the_server_root(url: str) -> None:
    assert normalise_api_url(url) == "http://h:8080"


def test_the_session_file_is_written_atomically_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "config.json"

    save_session(StoredSession("http://h", "a", "r", "ada"), path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_session(path) == StoredSession("http://h", "a", "r", "ada")
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


def test_a_corrupt_session_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    path.chmod(0o600)

    assert load_session(path) == StoredSession()


def test_validate_works_offline_and_exits_1_with_paths(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"workflow_id": "w", "version": "1", "name": "W", "steps": []}))

    result = CliRunner().invoke(cli, ["validate", str(path), "--api-url", "http://127.0.0.1:1"])

    assert result.exit_code == 1
    assert "trigger" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_usage_errors_exit_2() -> None:
    result = CliRunner().invoke(cli, ["deploy"])

    assert result.exit_code == 2
