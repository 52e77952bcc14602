"""Local stand-ins for the outside world: an HTTP server and an SMTP server that record.

Both listen on 127.0.0.1 only (tests allow-list 127.0.0.0/8 through
OUTBOUND_ALLOW_CIDRS). The HTTP sink answers 200 `{"ok": true}` unless a path
is scripted with `respond(path, status, body, delay)`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Script:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    delay: float = 0.0
    # Answer `status` this many times, then 200 (to rehearse retries).
    times: int | None = None


class HttpSink:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                path = self.path.split("?", 1)[0]
                with sink._lock:
                    sink.received.append(
                        Received(self.command, self.path, dict(self.headers), body)
                    )
                    script = sink.scripts.get(path, Script())
                    status = script.status
                    if script.times is not None:
                        if script.times <= 0:
                            status = 200
                        script.times -= 1
                if script.delay:
                    time.sleep(script.delay)
                payload = json.dumps(
                    script.body if status == script.status else {"ok": True}
                ).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HttpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def respond(
        self,
        path: str,
        status: int = 200,
        body: Any = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        with self._lock:
            self.scripts[path] = Script(
                status, {"ok": status < 400} if body is None else body, delay, times
            )

    def calls(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.split("?", 1)[0] == path]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.scripts.clear()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    content: str


class SmtpSink:
    """aiosmtpd in a thread; `messages` collects every accepted mail."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Mail] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                content = envelope.content.decode("utf8", errors="replace")
                sink.messages.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), content))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.messages if address in m.recipients]


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
