"""A local fake of Anthropic's Message Batches endpoints, for testing batch mode with the real `anthropic` SDK.

`POST /v1/messages/batches`, `GET /v1/messages/batches/{id}`, `GET /v1/messages/batches/{id}/results` (JSONL) and
`GET /v1/messages/batches`, served by `FakeBatchServer` (point `ANTHROPIC_BASE_URL` at its `root_url`). A batch is
`in_progress` until its `polls_to_complete`-th retrieve, then `ended` with a results URL; each request succeeds
with `answer_for(params)`, or errors where that returns None. Every request is recorded, so a test can count
batch creations (resume must not pay twice).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

T0 = "2026-12-06T00:00:00Z"  # expiry and end times (not read by ragcli)


def _default_answer(params: dict[str, Any]) -> str | None:
    return "Batched answer [1]."


@dataclass
class FakeAnthropicBatchAPI:
    root_url: str = ""  # set to the server's root once it listens (the results URL points there)
    answer_for: Callable[[dict[str, Any]], str | None] = _default_answer
    polls_to_complete: int = 2
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in self.seen if m == method and p == path)

    def _results(self, bid: str) -> bytes:
        lines = []
        for req in self.requests[bid]:
            params = req["params"]
            text = self.answer_for(params)
            if text is None:
                error = {"type": "error", "error": {"type": "invalid_request_error", "message": "refused"}}
                result: dict[str, Any] = {"type": "errored", "error": error}
            else:
                prompt = sum(len(str(m["content"]).split()) for m in params["messages"])
                message = {
                    "id": f"msg_{req['custom_id']}",
                    "type": "message",
                    "role": "assistant",
                    "model": params["model"],
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": prompt, "output_tokens": len(text.split())},
                }
                result = {"type": "succeeded", "message": message}
            lines.append(json.dumps({"custom_id": req["custom_id"], "result": result}))
        return ("\n".join(lines) + "\n").encode()

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        with self.lock:
            self.seen.append((method, path))
            base = "/v1/messages/batches"
            if method == "POST" and path == base:
                reqs = json.loads(body)["requests"]
                bid = f"msgbatch_{len(self.batches) + 1}"
                self.requests[bid] = reqs
                self.polls[bid] = 0
                self.batches[bid] = {
                    "id": bid,
                    "type": "message_batch",
                    "processing_status": "in_progress",
                    "request_counts": {
                        "processing": len(reqs),
                        "succeeded": 0,
                        "errored": 0,
                        "canceled": 0,
                        "expired": 0,
                    },
                    "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "expires_at": "2026-12-07T00:00:00Z",
                    "ended_at": None,
                    "archived_at": None,
                    "cancel_initiated_at": None,
                    "results_url": None,
                }
                return 200, dict(self.batches[bid])
            if method == "GET" and path == base:
                data = [dict(b) for b in self.batches.values()]
                return 200, {"data": data, "has_more": False, "first_id": None, "last_id": None}
            parts = path[len(base) + 1 :].split("/") if path.startswith(base + "/") else []
            if method == "GET" and parts and parts[0] in self.batches:
                bid = parts[0]
                if parts[1:] == ["results"]:
                    return 200, self._results(bid)
                self.polls[bid] += 1
                batch = self.batches[bid]
                if batch["processing_status"] != "ended" and self.polls[bid] >= self.polls_to_complete:
                    n = len(self.requests[bid])
                    failed = sum(1 for r in self.requests[bid] if self.answer_for(r["params"]) is None)
                    batch.update(
                        processing_status="ended",
                        ended_at=T0,
                        results_url=f"{self.root_url}{base}/{bid}/results",
                        request_counts={
                            "processing": 0, "succeeded": n - failed, "errored": failed, "canceled": 0, "expired": 0,
                        },
                    )  # fmt: skip
                return 200, dict(batch)
            return 404, {"type": "error", "error": {"type": "not_found_error", "message": f"no route {path}"}}
