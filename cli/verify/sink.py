"""The local HTTP sink the probe workflow calls: an idempotent receiver that keeps count.

The deployment sends each outbound call with an `Idempotency-Key` header (the
same key for every retry of the step). The sink performs an effect once per key
and answers a repeated key with the first answer, as a careful receiver does.
A key received again with a different body would be a different effect under a
key already used: a duplicated effect. The first try of every `fail_every`-th
probe is answered 503, so the step's retries are exercised too.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY_HEADER = "Idempotency-Key"


@dataclass
class Effects:
    """What the sink saw, by idempotency key (guarded by the sink's lock)."""

    performed: dict[str, Any] = field(default_factory=dict)  # key -> the body it performed
    repeats: int = 0  # a key received again with the same body: answered from memory
    conflicts: list[str] = field(default_factory=list)  # a key received with another body
    failed_first_tries: int = 0
    without_key: int = 0


class Sink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, fail_every: int = 4) -> None:
        self.effects = Effects()
        self.fail_every = fail_every
        self._lock = threading.Lock()
        self._failed: set[str] = set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status = sink.receive(self.headers.get(KEY_HEADER), raw)
                payload = json.dumps({"ok": status < 400}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Sink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def receive(self, key: str | None, raw: bytes) -> int:
        """The status to answer one request with, its effect counted."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            if not key:
                self.effects.without_key += 1
                return 400
            if key in self.effects.performed:
                if self.effects.performed[key] == body:
                    self.effects.repeats += 1
                else:
                    self.effects.conflicts.append(key)
                return 200
            if self._fails_first(key, body):
                self._failed.add(key)
                self.effects.failed_first_tries += 1
                return 503
            self.effects.performed[key] = body
            return 200

    def _fails_first(self, key: str, body: Any) -> bool:
        if key in self._failed or not isinstance(body, dict) or self.fail_every <= 0:
            return False
        try:
            return int(str(body.get("n"))) % self.fail_every == 0
        except ValueError:
            return False

    def snapshot(self) -> Effects:
        with self._lock:
            return Effects(
                performed=dict(self.effects.performed),
                repeats=self.effects.repeats,
                conflicts=list(self.effects.conflicts),
                failed_first_tries=self.effects.failed_first_tries,
                without_key=self.effects.without_key,
            )
