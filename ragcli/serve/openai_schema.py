"""The OpenAI API shapes the gateway speaks: requests in, responses, stream chunks and errors out.

Only what the gateway reads is validated; other OpenAI fields (temperature, top_p, n, ...) are accepted and
ignored, because the pipeline's config decides them. ragcli's own per-request knobs travel in a `ragcli` object
(`extra_body={"ragcli": {...}}` in the openai SDK).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragcli.types import Answer, Citation, Usage


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Loose):
    type: str
    text: str | None = None


class ChatMessageIn(_Loose):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Loose):
    include_usage: bool = True


class RagcliOptions(BaseModel):
    """ragcli's per-request knobs. A filter here is ANDed with the key's tenant scope: it can only narrow."""

    model_config = ConfigDict(extra="forbid")
    where: str | dict[str, Any] | None = None
    top_k: int | None = Field(None, ge=1, le=200)
    budget_tokens: int | None = Field(None, ge=16)


class ChatCompletionRequest(_Loose):
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ragcli: RagcliOptions | None = None
    n: int = Field(1, ge=1, le=1)
    """One answer per request: `n` > 1 is refused (a 400 naming `n`) rather than silently answered once."""


class EmbeddingRequest(_Loose):
    model: str = Field(min_length=1, max_length=200)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    """`base64`: little-endian float32, what the openai SDK asks for by default."""


class FeedbackRequest(BaseModel):
    """ragcli's own endpoint (`POST /v1/feedback`): a verdict on an answer (`X-Ragcli-Query-Id`) and its sources."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=200)
    query_id: str = Field(min_length=1, max_length=64)
    verdict: Literal["good", "bad"]
    relevant: list[int] = Field(default_factory=list, max_length=200)
    irrelevant: list[int] = Field(default_factory=list, max_length=200)


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def citation_dict(c: Citation) -> dict[str, Any]:
    return {
        "number": c.number,
        "chunk_id": c.chunk_id,
        "source": c.source,
        "section": c.section,
        "page": c.page,
    }


def sources_text(citations: list[Citation]) -> str:
    """The citations as text appended to the answer: `Sources:` then one `[n] source § section` line each."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        where = c.source + (f" § {c.section}" if c.section else "") + (f" (p. {c.page})" if c.page else "")
        lines.append(f"[{c.number}] {where}")
    return "\n\nSources:\n" + "\n".join(lines)


def llm_usage(ans: Answer) -> Usage:
    """The usage of the answering model's calls (what OpenAI's `usage` counts), from the trace."""
    total = Usage()
    for t in ans.trace:
        if t.stage == "llm" or t.stage.startswith("llm"):
            total = total + t.usage
    return total


def usage_body(ans: Answer) -> dict[str, Any]:
    """OpenAI's `usage` with the model's real token counts, plus ragcli's totals over every stage and dollars."""
    llm = llm_usage(ans)
    return {
        "prompt_tokens": llm.input_tokens,
        "completion_tokens": llm.output_tokens,
        "total_tokens": llm.input_tokens + llm.output_tokens,
        "prompt_tokens_details": {"cached_tokens": llm.cached_tokens},
        "ragcli": {
            "input_tokens": ans.usage.input_tokens,
            "output_tokens": ans.usage.output_tokens,
            "calls": ans.usage.calls,
            "usd": ans.usage.usd,
        },
    }


def ragcli_meta(ans: Answer, cache: str, tier: str) -> dict[str, Any]:
    return {
        "query_id": ans.query_id,
        "cost_usd": ans.usage.usd,
        "cache": cache,
        "tier": tier,
        "warnings": list(ans.warnings),
    }


def completion_body(ans: Answer, model: str, request_id: str, cache: str, tier: str) -> dict[str, Any]:
    """A `chat.completion` whose content is the answer with its sources, and a `citations` list beside it."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ans.text + sources_text(ans.citations)},
                "finish_reason": "stop",
            }
        ],
        "usage": usage_body(ans),
        "citations": [citation_dict(c) for c in ans.citations],
        "ragcli": ragcli_meta(ans, cache, tier),
    }


def chunk_body(
    request_id: str,
    model: str,
    *,
    content: str | None = None,
    role: bool = False,
    finish: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk`; with `extra` (the last chunk) it also carries usage and citations."""
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    body: dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra:
        body.update(extra)
    return body
