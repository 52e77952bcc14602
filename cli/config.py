"""Where `iwctl login` keeps its session: a JSON file readable only by its owner.

`IWCTL_CONFIG` names the file (default `~/.config/iwctl/config.json`). It holds
`{api_url, access_token, refresh_token, username}`: tokens are only ever sent to
the API URL they were issued by.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import click

DEFAULT_API_URL = "http://127.0.0.1:8080"
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


@dataclass
class StoredSession:
    api_url: str = ""
    access_token: str = ""
    refresh_token: str = ""
    username: str = ""


def config_path() -> Path:
    override = os.environ.get("IWCTL_CONFIG")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "iwctl" / "config.json"


def load_session(path: Path | None = None) -> StoredSession:
    path = path or config_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return StoredSession()
    except OSError as exc:
        click.echo(f"warning: cannot read {path}: {exc.strerror}", err=True)
        return StoredSession()
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        click.echo(f"warning: {path} is readable by others; run: chmod 600 {path}", err=True)
    try:
        data = json.loads(raw)
    except ValueError:
        click.echo(f"warning: {path} is not valid JSON; ignoring it", err=True)
        return StoredSession()
    if not isinstance(data, dict):
        return StoredSession()
    fields = StoredSession.__dataclass_fields__
    return StoredSession(**{k: str(v) for k, v in data.items() if k in fields and v})


def save_session(session: StoredSession, path: Path | None = None) -> Path:
    """Write atomically, created 0600 (never briefly readable by others)."""
    path = path or config_path()
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(asdict(session), handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    os.chmod(path, FILE_MODE)
    return path
