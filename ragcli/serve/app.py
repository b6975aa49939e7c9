"""The HTTP layer of the gateway (FastAPI): parse a request, call the `Gateway`, write the OpenAI-shaped response.

Thin on purpose: every decision (who may call, which pipeline, what it costs) is in `gateway.py`. The pipeline
runs in a worker thread; a streamed answer's pieces cross to the event loop through a queue. The first event is
awaited before the response starts, so an error before the first token (a bad filter, an empty collection, a
provider that fails every retry) is a proper HTTP status with OpenAI's error JSON; an error after it is an SSE
`error` event. A client that hangs up mid-stream does not stop the query: its calls are billed and recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ragcli.serve.gateway import Gateway, GatewayError, status_of
from ragcli.serve.openai_schema import (
    ChatCompletionRequest,
    EmbeddingRequest,
    FeedbackRequest,
    chunk_body,
    completion_body,
    error_body,
    ragcli_meta,
    sources_text,
    usage_body,
)

log = logging.getLogger(__name__)


def create_app(gateway: Gateway) -> FastAPI:
    """A FastAPI app serving `/v1/chat/completions`, `/v1/models`, `/v1/embeddings`, `/healthz` and ragcli's
    `/v1/feedback`."""
    app = FastAPI(title="ragcli gateway", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway

    def error_response(exc: BaseException, request_id: str = "") -> JSONResponse:
        err = status_of(exc)
        if err.status >= 500:
            log.error("request %s failed: %s", request_id, type(exc).__name__, exc_info=exc)
        headers = dict(err.headers)
        if request_id:
            headers["X-Ragcli-Request-Id"] = request_id
        return JSONResponse(error_body(err.message, err.type, err.code, err.param), err.status, headers)

    async def read_json(request: Request) -> bytes:
        limit = gateway.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise GatewayError(
                413,
                f"request body of {declared} bytes is over the limit of {limit} bytes",
                code="request_too_large",
            )
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > limit:
                raise GatewayError(
                    413, f"request body is over the limit of {limit} bytes", code="request_too_large"
                )
        return bytes(body)

    def parse(model: type[Any], raw: bytes) -> Any:
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise GatewayError(
                400, f"invalid request: {param or 'body'}: {first['msg']}", param=param
            ) from None

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "pipelines": sorted(gateway.pipelines)}

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        try:
            caller = gateway.authenticate(request.headers.get("authorization"))
        except GatewayError as exc:
            return error_response(exc)
        names = [n for n in sorted(gateway.pipelines) if not caller.pipelines or n in caller.pipelines]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "ragcli"} for n in names]
        return {"object": "list", "data": data}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        rid = "emb-" + uuid.uuid4().hex[:16]
        try:
            caller = gateway.authenticate(request.headers.get("authorization"))
            req = parse(EmbeddingRequest, await read_json(request))
            vectors, tokens, model_name = await run_in_threadpool(gateway.embed, caller, req)
        except Exception as exc:
            return error_response(exc, rid)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(v, req.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": req.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            headers={"X-Ragcli-Request-Id": rid, "X-Ragcli-Embedder": model_name},
        )

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Any:
        try:
            caller = gateway.authenticate(request.headers.get("authorization"))
            req = parse(FeedbackRequest, await read_json(request))
            await run_in_threadpool(gateway.feedback, caller, req)
        except Exception as exc:
            return error_response(exc)
        return {"ok": True, "query_id": req.query_id, "verdict": req.verdict}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        rid = "chatcmpl-" + uuid.uuid4().hex[:20]
        t0 = time.perf_counter()
        try:
            caller = gateway.authenticate(request.headers.get("authorization"))
            req = parse(ChatCompletionRequest, await read_json(request))
            gateway.pipeline(caller, req.model)
        except Exception as exc:
            return error_response(exc, rid)
        if not req.stream:
            try:
                result = await run_in_threadpool(gateway.chat, caller, req)
            except Exception as exc:
                return error_response(exc, rid)
            headers = _headers(
                result.answer.query_id, result.answer.usage.usd, result.cache, result.tier, rid
            )
            headers["X-Ragcli-Gateway-Seconds"] = f"{time.perf_counter() - t0:.4f}"
            headers["X-Ragcli-Pipeline-Seconds"] = f"{result.seconds:.4f}"
            body = completion_body(result.answer, req.model, rid, result.cache, result.tier)
            return JSONResponse(body, headers=headers)

        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        def work() -> None:
            try:
                put("done", gateway.chat(caller, req, on_token=lambda piece: put("token", piece)))
            except BaseException as exc:
                put("error", exc)

        task = asyncio.ensure_future(run_in_threadpool(work))
        first = await events.get()
        if first[0] == "error":
            await task
            return error_response(first[1], rid)

        async def sse() -> AsyncIterator[bytes]:
            yield _sse(chunk_body(rid, req.model, content="", role=True))
            kind, value = first
            while True:
                if kind == "token":
                    yield _sse(chunk_body(rid, req.model, content=value))
                elif kind == "done":
                    ans = value.answer
                    tail = sources_text(ans.citations)
                    if tail:
                        yield _sse(chunk_body(rid, req.model, content=tail))
                    extra = {
                        "citations": [c.__dict__ for c in ans.citations],
                        "ragcli": ragcli_meta(ans, value.cache, value.tier),
                    }
                    yield _sse(chunk_body(rid, req.model, finish="stop", extra=extra))
                    usage = {**chunk_body(rid, req.model), "choices": [], "usage": usage_body(ans)}
                    yield _sse(usage)
                    yield b"data: [DONE]\n\n"
                    break
                else:
                    err = status_of(value)
                    if err.status >= 500:
                        log.error("stream %s failed: %s", rid, type(value).__name__, exc_info=value)
                    yield _sse(error_body(err.message, err.type, err.code, err.param))
                    break
                kind, value = await events.get()
            await task

        return StreamingResponse(
            sse(),
            media_type="text/event-stream",
            headers={"X-Ragcli-Request-Id": rid, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        import base64

        import numpy as np

        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


def _sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def _headers(query_id: str, usd: float | None, cache: str, tier: str, rid: str) -> dict[str, str]:
    return {
        "X-Ragcli-Query-Id": query_id,
        "X-Ragcli-Cost-Usd": "unknown" if usd is None else f"{usd:.8f}",
        "X-Ragcli-Cache": cache,
        "X-Ragcli-Tier": tier.encode("ascii", "replace").decode(),
        "X-Ragcli-Request-Id": rid,
    }
