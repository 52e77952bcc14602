"""Local HTTP servers speaking the Anthropic and OpenAI wire formats.

A `ProviderServer` records every request (path, headers, JSON body) and answers
with the replies scripted for the test, in order; an unscripted request gets a
500 so a test notices calls it did not expect. Streamed replies are written
frame by frame; a frame may wait for an event, so a test can prove that the API
relays frames as they arrive instead of buffering the answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    frames: list[str | threading.Event] | None = None  # SSE: text frames, or waits
    delay: float = 0.0


class ProviderServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.record(
                    Recorded(
                        "POST",
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw) if raw else None,
                    )
                )
                server.answer(self, server.next_reply())

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.replies.clear()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def next_reply(self) -> Reply:
        with self._lock:
            if self.replies:
                return self.replies.popleft()
        return Reply(500, {"error": {"message": "no reply scripted for this request"}})

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.frames is not None:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "no-cache")
            handler.send_header("Connection", "close")
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            for frame in reply.frames:
                if isinstance(frame, threading.Event):
                    frame.wait(timeout=10)
                    continue
                handler.wfile.write(frame.encode())
                handler.wfile.flush()
            handler.close_connection = True
            return
        payload = json.dumps(reply.body).encode() if reply.body is not None else b""
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)


# --- Anthropic Messages API -------------------------------------------------------------


def anthropic_message(
    text: str, *, model: str = "claude-test", input_tokens: int = 11, output_tokens: int = 7
) -> Reply:
    return Reply(
        200,
        {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        },
    )


def anthropic_error(status: int, kind: str, message: str, **headers: str) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


def sse(event: str | None, data: Any) -> str:
    head = f"event: {event}\n" if event else ""
    text = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {text}\n\n"


def anthropic_stream(
    *pieces: str | threading.Event,
    model: str = "claude-test",
    input_tokens: int = 9,
    output_tokens: int = 5,
) -> Reply:
    frames: list[str | threading.Event] = [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_s",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        ),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        sse("ping", {"type": "ping"}),
    ]
    for piece in pieces:
        if isinstance(piece, threading.Event):
            frames.append(piece)
        else:
            frames.append(
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
    frames += [
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
    return Reply(200, frames=frames)


# --- OpenAI Chat Completions API --------------------------------------------------------


def openai_completion(
    text: str, *, model: str = "gpt-test", prompt_tokens: int = 13, completion_tokens: int = 8
) -> Reply:
    return Reply(
        200,
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )


def openai_error(
    status: int, message: str, kind: str = "invalid_request_error", **headers: str
) -> Reply:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


def openai_stream(
    *pieces: str | threading.Event,
    model: str = "gpt-test",
    prompt_tokens: int = 6,
    completion_tokens: int = 4,
) -> Reply:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return sse(
            None,
            {
                "id": "chatcmpl-s",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            },
        )

    frames: list[str | threading.Event] = [chunk({"role": "assistant", "content": ""})]
    for piece in pieces:
        frames.append(piece if isinstance(piece, threading.Event) else chunk({"content": piece}))
    frames.append(chunk({}, "stop"))
    frames.append(
        sse(
            None,
            {
                "id": "chatcmpl-s",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )
    )
    frames.append(sse(None, "[DONE]"))
    return Reply(200, frames=frames)
