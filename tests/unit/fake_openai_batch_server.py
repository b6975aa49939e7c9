"""A local fake of OpenAI's Files and Batch endpoints, for testing batch mode with the real `openai` SDK.

`POST /v1/files` (multipart upload), `GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}`,
`GET /v1/batches`. A batch is `validating` when created, `in_progress` at the first retrieve and `completed` at the
second (or after `polls_to_complete` retrieves); its output file answers every request with `answer_for(body)`.
Every request is recorded, so a test can count uploads and batch creations (resume must not pay twice).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


def _default_answer(body: dict[str, Any]) -> str:
    return "Batched answer [1]."


@dataclass
class FakeBatchAPI:
    answer_for: Callable[[dict[str, Any]], str] = _default_answer
    polls_to_complete: int = 2
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.seen if m == method and p.startswith(prefix))

    def _file_obj(self, fid: str, purpose: str) -> dict[str, Any]:
        return {
            "id": fid,
            "object": "file",
            "bytes": len(self.files[fid]),
            "created_at": 0,
            "filename": f"{fid}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    def _batch_obj(self, bid: str) -> dict[str, Any]:
        return dict(self.batches[bid])

    def _complete(self, bid: str) -> None:
        batch = self.batches[bid]
        lines = []
        for raw in self.files[batch["input_file_id"]].decode().splitlines():
            if not raw.strip():
                continue
            req = json.loads(raw)
            body = req["body"]
            prompt = sum(len(m["content"].split()) for m in body["messages"])
            text = self.answer_for(body)
            lines.append(
                json.dumps(
                    {
                        "id": f"resp-{req['custom_id']}",
                        "custom_id": req["custom_id"],
                        "response": {
                            "status_code": 200,
                            "request_id": "r",
                            "body": {
                                "id": "chatcmpl-b",
                                "object": "chat.completion",
                                "created": 0,
                                "model": body["model"],
                                "choices": [
                                    {
                                        "index": 0,
                                        "message": {"role": "assistant", "content": text},
                                        "finish_reason": "stop",
                                    }
                                ],
                                "usage": {
                                    "prompt_tokens": prompt,
                                    "completion_tokens": len(text.split()),
                                    "total_tokens": prompt + len(text.split()),
                                },
                            },
                        },
                        "error": None,
                    }
                )
            )
        out_id = f"file-out-{bid}"
        self.files[out_id] = ("\n".join(lines) + "\n").encode()
        batch.update(status="completed", output_file_id=out_id)
        batch["request_counts"] = {"total": len(lines), "completed": len(lines), "failed": 0}

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        with self.lock:
            self.seen.append((method, path))
            if method == "POST" and path == "/v1/files":
                msg = BytesParser(policy=HTTP).parsebytes(
                    b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body
                )
                parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
                fid = f"file-{len(self.files) + 1}"
                self.files[fid] = parts["file"].get_payload(decode=True)
                purpose = parts["purpose"].get_payload(decode=True).decode()
                return 200, self._file_obj(fid, purpose)
            if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
                fid = path.split("/")[3]
                return (
                    (200, self.files[fid]) if fid in self.files else (404, {"error": {"message": "no file"}})
                )
            if method == "POST" and path == "/v1/batches":
                req = json.loads(body)
                bid = f"batch-{len(self.batches) + 1}"
                self.batches[bid] = {
                    "id": bid,
                    "object": "batch",
                    "endpoint": req["endpoint"],
                    "input_file_id": req["input_file_id"],
                    "completion_window": req["completion_window"],
                    "status": "validating",
                    "created_at": 0,
                    "metadata": req.get("metadata"),
                    "request_counts": {"total": 0, "completed": 0, "failed": 0},
                }
                self.polls[bid] = 0
                return 200, self._batch_obj(bid)
            if method == "GET" and path == "/v1/batches":
                data = [self._batch_obj(b) for b in self.batches]
                return 200, {"object": "list", "data": data, "has_more": False}
            if method == "GET" and path.startswith("/v1/batches/"):
                bid = path.split("/")[3]
                if bid not in self.batches:
                    return 404, {"error": {"message": "no batch"}}
                self.polls[bid] += 1
                if self.batches[bid]["status"] != "completed":
                    if self.polls[bid] >= self.polls_to_complete:
                        self._complete(bid)
                    else:
                        self.batches[bid]["status"] = "in_progress"
                return 200, self._batch_obj(bid)
            return 404, {"error": {"message": f"no route {method} {path}"}}


class FakeAPI(Protocol):
    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]: ...


class FakeBatchServer:
    """Serves a fake API (`FakeBatchAPI` by default) on 127.0.0.1 in a thread; use as a context manager."""

    def __init__(self, api: FakeAPI | None = None) -> None:
        self.api: Any = api or FakeBatchAPI()
        api_ref = self.api

        class Handler(BaseHTTPRequestHandler):
            def _do(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = api_ref.handle(method, self.path.split("?")[0], self.headers, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type",
                    "application/octet-stream" if isinstance(payload, bytes) else "application/json",
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def __enter__(self) -> FakeBatchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
