"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for testing provider error paths without a network.

Each request to `/v1/chat/completions` takes the next scripted `Reply` (a success when the script is empty) and
is recorded. Replies can be errors with headers (`Retry-After`), slow (`delay_s`), malformed, or streamed (SSE).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion_body(
    text: str = "Paris [1].", prompt: int = 50, output: int = 4, cached: int = 0, model: str = "gpt-4o-mini"
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def error_body(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | str | None = None
    """A dict is sent as JSON; a str is sent as is (for malformed bodies); None: a default completion."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    stream: list[str] | None = None
    """Text pieces to send as server-sent events, then a usage chunk and [DONE]."""
    usage: dict[str, int] | None = None
    omit_usage: bool = False
    """Stream without the usage chunk, like servers that ignore `stream_options`."""
    content_type: str = "application/json"
    cut_after: int | None = None
    """Stream only: send this many pieces, then drop the connection mid-body (a stream cut midway)."""


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer() as server:`; `server.base_url` is what the SDK needs."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with owner._lock:
                    owner.requests.append(
                        Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = owner.replies.popleft() if owner.replies else Reply()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    if reply.stream is not None:
                        self._stream(reply, body)
                    else:
                        self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def _send(self, reply: Reply) -> None:
                payload = reply.body if reply.body is not None else completion_body()
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply, request: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                if reply.cut_after is not None:
                    # promise a body longer than what is sent: the client sees the cut
                    self.send_header("Content-Length", "1000000")
                self.end_headers()
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "m"}
                for i, piece in enumerate(reply.stream or []):
                    if reply.cut_after is not None and i >= reply.cut_after:
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    chunk = {
                        **base,
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                if (request.get("stream_options") or {}).get("include_usage") and not reply.omit_usage:
                    usage = reply.usage or {"prompt_tokens": 40, "completion_tokens": len(reply.stream or [])}
                    usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
                    self.wfile.write(
                        f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode()
                    )
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
