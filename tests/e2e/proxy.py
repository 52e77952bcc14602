"""A same-origin reverse proxy for end-to-end tests: the stream routes to the stream
service, everything else to the API, as README "Live execution updates" tells a
site to set up its proxy. Responses are passed on as they arrive (no buffering),
so a Server-Sent Events stream stays live through it."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

STREAM_PATHS = re.compile(r"^/api/v1/executions/(stream|[0-9a-fA-F-]{36}/events)(\?|$)")
# Hop-by-hop: about one connection, never passed on (RFC 9110 §7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
}


def _handler(api: str, streams: str) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        # HTTP/1.0 towards the browser: each answer ends when the connection closes,
        # so a stream of unknown length needs no re-chunking here.
        protocol_version = "HTTP/1.0"

        def _forward(self) -> None:
            target = urlsplit(streams if STREAM_PATHS.match(self.path) else api)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                self.send_response_only(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.end_headers()
                while chunk := response.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser left (a page closed its stream): nothing to answer
            finally:
                upstream.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the services behind it log the requests."""

    return Proxy


@contextmanager
def same_origin_proxy(api: str, streams: str) -> Iterator[str]:
    """Serve the proxy on a free local port while the block runs; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api, streams))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
