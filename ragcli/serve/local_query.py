"""`POST /v1/ragcli/query`: the CLI's `ragcli query`, run by a warm `ragcli serve` for the same user.

The CLI finds the server through its discovery file (`discovery.py`) and authenticates with the random token in
it, which only the user who started the server can read. The route runs the query exactly as the CLI would run it
in its own process (the same question check, `answer()` with the same options, no tenant scope beyond the
config's) and returns the JSON that `ragcli query --json` prints, so the CLI prints the same either way. An error
returns the message the CLI would print and whether it is a backend failure (exit 1) or a usage error (exit 64).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from ragcli.errors import BackendError, RagError
from ragcli.pipelines.stages import Stages
from ragcli.serve.discovery import QUERY_PATH
from ragcli.serve.gateway import Gateway

log = logging.getLogger(__name__)


class LocalQueryRequest(BaseModel):
    """What `ragcli query` sends: the pipeline and the config id it expects, the question and its options."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str
    config_id: str
    question: str
    where: str | None = None
    budget_tokens: int | None = Field(None, ge=16)
    top_k: int | None = Field(None, ge=1)
    no_answer: bool = False
    no_cache: bool = False
    tenant: str = ""


def _error(status: int, message: str, *, backend: bool = False) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "backend": backend}}, status)


def run_local_query(stages: Stages, req: LocalQueryRequest) -> Any:
    """The CLI's query on this server's stages: the question check, then `answer()`; JSON-ready."""
    # The CLI's own JSON form, so that both paths print the same (answer() checks the question).
    from ragcli.cli_support import to_jsonable
    from ragcli.pipelines.query_pipeline import QueryOptions, answer

    opts = QueryOptions(
        where=req.where,
        budget_tokens=req.budget_tokens,
        top_k=req.top_k,
        no_answer=req.no_answer,
        no_cache=req.no_cache,
        tenant=req.tenant,
    )
    return to_jsonable(answer(req.question, stages, opts))


def add_local_query_route(app: FastAPI, gateway: Gateway, token: str, config_ids: dict[str, str]) -> None:
    """Serve `POST /v1/ragcli/query` to callers holding `token` (the discovery file's)."""

    @app.post(QUERY_PATH, include_in_schema=False)
    async def local_query(request: Request) -> Any:
        sent = request.headers.get("authorization", "")
        if not sent.lower().startswith("bearer ") or not hmac.compare_digest(sent[7:].strip(), token):
            return _error(
                401, "this route is for `ragcli query` on the same machine (a local token is needed)"
            )
        try:
            req = LocalQueryRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _error(400, f"invalid request: {exc.errors()[0]['msg']}")
        stages = gateway.pipelines.get(req.pipeline)
        if stages is None or config_ids.get(req.pipeline) != req.config_id:
            return _error(409, f"pipeline {req.pipeline!r} is not served here with that config")
        try:
            body = await run_in_threadpool(run_local_query, stages, req)
        except (RagError, OSError) as exc:
            backend = isinstance(exc, BackendError | OSError)
            return _error(502 if backend else 400, str(exc).strip(), backend=backend)
        except Exception as exc:
            log.error("local query failed: %s", type(exc).__name__, exc_info=exc)
            return _error(500, "ragcli serve failed on this query; its log has the details", backend=True)
        return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")
