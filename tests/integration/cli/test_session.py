"""login, logout, whoami, credentials and their failures, against a running API."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.integration.cli.conftest import API, Account, Iwctl, register_account

pytestmark = pytest.mark.integration


def _mode(path: Any) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_login_stores_the_session_readable_only_by_its_owner(
    iwctl: Iwctl, account: Account, api_url: str
) -> None:
    result = iwctl.login(account)

    assert f"logged in to {api_url}" in result.stdout
    assert account.username in result.stdout
    assert _mode(iwctl.config) == 0o600
    stored = json.loads(iwctl.config.read_text())
    assert stored["api_url"] == api_url
    assert stored["access_token"] and stored["refresh_token"]


def test_login_prompts_for_missing_credentials(iwctl: Iwctl, account: Account) -> None:
    result = iwctl("login", input=f"{account.username}\n{account.password}\n")

    assert result.exit_code == 0, result
    assert "Username" in result.stdout
    assert account.username in result.stdout
    assert account.password not in result.stdout


def test_login_tightens_a_config_file_others_could_read(iwctl: Iwctl, account: Account) -> None:
    iwctl.config.write_text("{}")
    iwctl.config.chmod(0o644)

    iwctl.login(account)

    assert _mode(iwctl.config) == 0o600


def test_a_config_file_others_can_read_is_warned_about(cli: Iwctl) -> None:
    cli.config.chmod(0o644)

    result = cli.ok("whoami")

    assert "readable by others" in result.stderr


def test_a_wrong_password_fails_clearly_and_stores_nothing(iwctl: Iwctl, account: Account) -> None:
    result = iwctl("login", "-u", account.username, "-p", "wrong-password-1")

    assert result.exit_code == 3
    assert "error:" in result.stderr and "(HTTP 401)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not iwctl.config.exists()


def test_whoami_shows_the_user_organization_and_permissions(cli: Iwctl, account: Account) -> None:
    result = cli.ok("whoami")

    assert account.username in result.stdout
    assert "role:" in result.stdout and "admin" in result.stdout
    assert "workflow:create" in result.stdout
    assert cli.ok("whoami", "--json").json()["username"] == account.username


def test_an_invalid_access_token_is_refreshed_once_and_the_new_tokens_saved(cli: Iwctl) -> None:
    stored = json.loads(cli.config.read_text())
    cli.config.write_text(json.dumps({**stored, "access_token": "not-a-token"}))

    result = cli.ok("list")

    assert "no workflows" in result.stdout
    renewed = json.loads(cli.config.read_text())
    assert renewed["access_token"] != "not-a-token"
    assert renewed["refresh_token"] != stored["refresh_token"]  # rotated, and kept
    assert _mode(cli.config) == 0o600
    cli.ok("list")  # the saved pair works


def test_a_bad_token_without_a_usable_refresh_token_asks_to_log_in_again(cli: Iwctl) -> None:
    stored = json.loads(cli.config.read_text())
    cli.config.write_text(
        json.dumps({**stored, "access_token": "bad", "refresh_token": "also-bad"})
    )

    result = cli("list")

    assert result.exit_code == 3
    assert "session has expired or was revoked" in result.stderr
    assert "iwctl login" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_credentials_the_api_refusal_is_explained(iwctl: Iwctl) -> None:
    result = iwctl("list")

    assert result.exit_code == 3
    assert "Authentication required" in result.stderr
    assert "hint: run `iwctl login`" in result.stderr


def test_an_api_key_from_the_environment_is_used_and_nothing_is_stored(
    iwctl: Iwctl, account: Account
) -> None:
    response = account.call("POST", "/auth/api-keys", json={"name": "cli"})
    assert response.status_code == 201, response.text
    key = {"IWCTL_API_KEY": response.json()["api_key"]}

    login = iwctl("login", env=key)
    listing = iwctl("list", env=key)

    assert login.exit_code == 0, login
    assert "IWCTL_API_KEY" in login.stdout and account.username in login.stdout
    assert listing.exit_code == 0 and "no workflows" in listing.stdout
    assert not iwctl.config.exists()


def test_a_refused_api_key_is_reported(iwctl: Iwctl) -> None:
    result = iwctl("list", env={"IWCTL_API_KEY": "iwk_not_a_key"})

    assert result.exit_code == 3
    assert "The API key is not valid (HTTP 401)" in result.stderr
    assert "IWCTL_API_KEY was refused" in result.stderr


def test_logout_revokes_the_session_and_forgets_its_tokens(cli: Iwctl, api_url: str) -> None:
    import httpx

    refresh_token = json.loads(cli.config.read_text())["refresh_token"]

    result = cli.ok("logout")

    assert "logged out" in result.stdout
    assert json.loads(cli.config.read_text())["refresh_token"] == ""
    reuse = httpx.post(
        f"{api_url}{API}/auth/refresh", json={"refresh_token": refresh_token}, timeout=10
    )
    assert reuse.status_code == 401
    assert cli("list").exit_code == 3


def test_an_unreachable_api_is_reported_with_its_url(iwctl: Iwctl, closed_port_url: str) -> None:
    result = iwctl("--api-url", closed_port_url, "list")
    after = iwctl("list", "--api-url", closed_port_url)
    from_env = iwctl("list", env={"IWCTL_API_URL": closed_port_url})

    for outcome in (result, after, from_env):
        assert outcome.exit_code == 3
        assert f"cannot reach API at {closed_port_url}" in outcome.stderr
        assert "Traceback" not in outcome.stderr


def test_api_url_option_wins_over_the_environment(
    iwctl: Iwctl, account: Account, api_url: str, closed_port_url: str
) -> None:
    result = iwctl(
        "--api-url",
        api_url + "/api/v1/",
        "login",
        "-u",
        account.username,
        "-p",
        account.password,
        env={"IWCTL_API_URL": closed_port_url},
    )

    assert result.exit_code == 0, result
    assert json.loads(iwctl.config.read_text())["api_url"] == api_url


class _HeaderRecorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        body = b'{"code": 401, "status": "Unauthorized", "message": "who are you"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    _HeaderRecorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HeaderRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_tokens_are_never_sent_to_another_server(cli: Iwctl, other_server: str) -> None:
    result = cli("--api-url", other_server, "list")

    assert result.exit_code == 3
    assert "who are you (HTTP 401)" in result.stderr
    assert _HeaderRecorder.seen
    assert all("Authorization" not in headers for headers in _HeaderRecorder.seen)


def test_each_user_sees_only_their_organization(cli: Iwctl, api_url: str, tmp_path: Any) -> None:
    cli.ok("templates", "init", "hello", "-o", "hello.json")
    cli.ok("deploy", "hello.json")
    other = Iwctl(tmp_path / "other", api_url)
    other.home.mkdir()
    other.login(register_account(api_url))

    assert "hello" in cli.ok("list").stdout
    assert "no workflows" in other.ok("list").stdout
