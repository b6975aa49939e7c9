"""Token counts from providers' usage objects, in ragcli's one convention (see `Usage`), unpriced.

Each provider counts differently, and that is where most double counts come from:
- OpenAI (chat, Responses, embeddings) and OpenAI-compatible servers: `prompt_tokens` INCLUDES the cached tokens
  (`prompt_tokens_details.cached_tokens`; DeepSeek: `prompt_cache_hit_tokens`), and `completion_tokens`
  INCLUDES the reasoning tokens (`completion_tokens_details.reasoning_tokens`).
- Anthropic: `input_tokens` EXCLUDES cache reads (`cache_read_input_tokens`) and cache writes
  (`cache_creation_input_tokens`, split by TTL in `cache_creation.ephemeral_5m/1h_input_tokens`); a stream
  reports them in `message_start` and the final, cumulative counts in `message_delta`.
- Batch results: OpenAI's output file says nothing about the batch (its `service_tier` is "default"): the reader
  of a batch file sets `batch`; Anthropic's Message Batches results carry `service_tier: "batch"`.

Every function takes the SDK's object or the parsed JSON (a dict) alike, and returns `usd=None`: the price table
(`PriceTable.priced`) sets the dollars.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ragcli.types import Usage


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(obj: Any, key: str) -> int:
    value = _get(obj, key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def openai_usage(raw: Any, *, batch: bool = False) -> Usage | None:
    """Usage of an OpenAI-style response (chat completion, Responses API, embeddings); None if it has none."""
    if raw is None:
        return None
    if _get(raw, "prompt_tokens") is not None:
        prompt, output = _int(raw, "prompt_tokens"), _int(raw, "completion_tokens")
        in_details, out_details = _get(raw, "prompt_tokens_details"), _get(raw, "completion_tokens_details")
    elif _get(raw, "input_tokens") is not None:  # the Responses API
        prompt, output = _int(raw, "input_tokens"), _int(raw, "output_tokens")
        in_details, out_details = _get(raw, "input_tokens_details"), _get(raw, "output_tokens_details")
    else:
        return None
    # OpenAI: prompt_tokens_details.cached_tokens; DeepSeek: prompt_cache_hit_tokens (+ _miss_ = the rest)
    cached = _int(in_details, "cached_tokens") or _int(raw, "prompt_cache_hit_tokens")
    return Usage(
        input_tokens=prompt,
        cached_tokens=min(cached, prompt),
        output_tokens=output,
        usd=None,
        calls=1,
        reasoning_tokens=min(_int(out_details, "reasoning_tokens"), output),
        batch=batch,
    )


def anthropic_usage(raw: Any, final: Any = None) -> Usage:
    """Usage of an Anthropic message; `final` is a stream's last `message_delta` usage (cumulative counts)."""

    def pick(key: str) -> int:
        # message_delta repeats the counts it knows, cumulatively; the others stay as message_start said
        return _int(final, key) if _get(final, key) is not None else _int(raw, key)

    plain = pick("input_tokens")
    read = pick("cache_read_input_tokens")
    write = pick("cache_creation_input_tokens")
    split = _get(final, "cache_creation") or _get(raw, "cache_creation")
    write_5m, write_1h = _int(split, "ephemeral_5m_input_tokens"), _int(split, "ephemeral_1h_input_tokens")
    write = max(write, write_5m + write_1h)
    return Usage(
        input_tokens=plain + read + write,  # ragcli counts every prompt token, as OpenAI does
        cached_tokens=read,
        output_tokens=pick("output_tokens"),
        usd=None,
        calls=1,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
        batch=(_get(raw, "service_tier") or _get(final, "service_tier")) == "batch",
    )


@dataclass(frozen=True)
class BatchResult:
    """One request of a finished batch: its id, the model that served it and its usage (unpriced)."""

    custom_id: str
    model: str
    usage: Usage


def _records(lines: Iterable[str | Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for line in lines:
        if isinstance(line, Mapping):
            yield line
        elif line.strip():
            yield json.loads(line)


def openai_batch_results(lines: Iterable[str | Mapping[str, Any]]) -> list[BatchResult]:
    """The successful requests of an OpenAI Batch API output file (JSONL), each marked `batch=True`."""
    out: list[BatchResult] = []
    for rec in _records(lines):
        response = rec.get("response") or {}
        body = response.get("body") or {}
        if rec.get("error") or response.get("status_code") != 200:
            continue  # failed requests are not billed
        usage = openai_usage(body.get("usage"), batch=True)
        if usage is not None:
            out.append(BatchResult(str(rec.get("custom_id", "")), str(body.get("model", "")), usage))
    return out


def anthropic_batch_results(lines: Iterable[str | Mapping[str, Any]]) -> list[BatchResult]:
    """The succeeded requests of an Anthropic Message Batches results file (JSONL), each marked `batch=True`."""
    out: list[BatchResult] = []
    for rec in _records(lines):
        result = rec.get("result") or {}
        if result.get("type") != "succeeded":
            continue  # errored, canceled and expired requests are not billed
        message = result.get("message") or {}
        usage = anthropic_usage(message.get("usage"))
        out.append(
            BatchResult(
                str(rec.get("custom_id", "")), str(message.get("model", "")), replace(usage, batch=True)
            )
        )
    return out
