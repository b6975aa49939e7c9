"""Batch mode: answer a JSONL file of questions, sending API-tier work through the provider's batch API (half
price) and answering local tiers in-process; resumable without paying twice.

    run_batch(questions.jsonl, answers.jsonl, stages) -> BatchReport

Each question is retrieved, packed and routed as in `answer()`. A question routed to an API tier whose price has a
batch discount becomes one request of that tier's batch: an OpenAI-compatible tier's through the Files and Batch
APIs, an Anthropic tier's through Message Batches. Others are answered at once. Everything is kept in a state file
beside the output (`answers.jsonl.state.json`): the prepared requests, the uploaded file id and the batch id are
saved the moment they exist, so running the same command again after an interruption polls the batch already paid
for instead of submitting a new one (a batch created but not yet saved is found again: OpenAI's by its input file,
Anthropic's by its request count among the batches created since the submission began). Each result is one ledger
row priced at the batch price (`Usage.batch`), written once.

A line is reused by its id and its content (question, filter, context cap): after an edit of the questions file,
the unchanged lines keep their answers and only the new or changed ones are asked. A bad line (not JSON, no
question, a repeated id, an unknown filter field, a question too long) is written as a `status: "invalid"`
line naming its line number, checked before anything is paid; the others are answered. A line whose filter
matches no source is refused without an LLM call when `prompt.no_sources: refuse`, as a single query is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ragcli.config import AnthropicLLMConfig, OpenAICompatibleLLMConfig
from ragcli.cost.ledger import LedgerRow
from ragcli.cost.provider_usage import anthropic_usage, openai_usage
from ragcli.errors import BackendError, BudgetExceeded, InputError
from ragcli.pipelines.query_pipeline import (
    QueryOptions,
    check_question,
    new_recorder,
    prepare,
    refuse_without_sources,
    retrieve,
)
from ragcli.pipelines.recorder import Recorder
from ragcli.pipelines.route_step import Routed, generate_routed, route
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.filter_parser import parse_where

log = logging.getLogger(__name__)

TERMINAL = ("completed", "failed", "expired", "cancelled")
BatchConfig = OpenAICompatibleLLMConfig | AnthropicLLMConfig
# what Anthropic accepts as a request's custom_id; other question ids are hashed into one
_ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class BatchReport:
    """What a run did: answers written, requests still waiting in a provider batch, and the batch ids."""

    answered: int = 0
    pending: int = 0
    """Lines not answered yet: in a provider batch, or changed while their old version was in one (run again)."""
    failed: int = 0
    batches: list[str] = field(default_factory=list)
    out: str = ""
    invalid: list[str] = field(default_factory=list)
    """One `file:line (id ...): why` per bad input line; each is also an `invalid` line of the answers file."""


def read_questions(
    path: Path, *, where: str | None = None, budget_tokens: int | None = None
) -> list[dict[str, Any]]:
    """Lines `{"id": ..., "question": ..., "where": ...}` (`id` defaults to the line number; `where` optional,
    else `where`), each with its line number and the key its answer is reused by; a bad line has an `error`."""
    if not path.is_file():
        raise InputError(
            f"questions file {str(path)!r} does not exist; give a JSONL file with a `question` per line"
        )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            out.append(_bad(path, n, str(n), "", f"not valid JSON ({exc})"))
            continue
        if not isinstance(rec, dict):
            out.append(_bad(path, n, str(n), "", 'expected a JSON object with a "question"'))
            continue
        qid, question = str(rec.get("id", n)), str(rec.get("question") or "").strip()
        if not question:
            out.append(_bad(path, n, qid, "", 'each line needs a non-empty "question"'))
        elif qid in seen:
            out.append(_bad(path, n, qid, question, f"id {qid!r} appears twice; ids must be unique"))
        else:
            seen.add(qid)
            item_where = rec["where"] if rec.get("where") is not None else where
            key = json.dumps([question, item_where, budget_tokens], sort_keys=True, ensure_ascii=False)
            out.append(
                {
                    "id": qid,
                    "question": question,
                    "where": item_where,
                    "line": n,
                    "key": hashlib.sha256(key.encode()).hexdigest()[:16],
                }
            )
    return out


def _bad(path: Path, n: int, qid: str, question: str, why: str) -> dict[str, Any]:
    return {"id": qid, "question": question, "line": n, "error": f"{path}:{n} (id {qid!r}): {why}"}


def _check_lines(items: list[dict[str, Any]], stages: Stages, path: Path) -> None:
    """Mark the lines that would fail before any work: a filter the config cannot apply, a question too long."""
    for item in items:
        if "error" in item:
            continue
        try:
            parse_where(item["where"], stages.config.filterable)
            check_question(item["question"], stages)
        except InputError as exc:
            item.update(_bad(path, item["line"], item["id"], item["question"], str(exc)))
            del item["key"]  # a bad line has no answer to reuse


def _check_out(out: Path) -> None:
    """Refuse an answers path that cannot be written before anything is paid (state file and answers go there);
    a missing folder is made, as for every other file a command writes."""
    if out.is_dir():
        raise InputError(
            f"--out {str(out)!r} is a folder; give a file path such as {str(out / 'answers.jsonl')!r}"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"--out {str(out)!r}: cannot make its folder {str(out.parent)!r} ({exc.strerror}); give a writable path"
        ) from None


class _State:
    """The resumable state, written atomically after every change. Records are reused by id and `key` (the
    line's content), so an edited questions file keeps the answers of its unchanged lines."""

    def __init__(self, path: Path, items: list[dict[str, Any]], input_sha: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {"version": 2, "done": {}, "pending": {}, "batches": []}
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            if "version" not in saved:  # written before records had keys: valid for the same file only
                if saved.get("input_sha") != input_sha:
                    raise InputError(
                        f"the state file {path} was written by an older ragcli for another version of the "
                        f"questions file; run once with the original file to finish it, or move {path} aside "
                        "(its finished answers stay in the answers file; those questions would be asked again)"
                    )
                keys = {i["id"]: i["key"] for i in items if "key" in i}
                for rec in [*saved["done"].values(), *saved["pending"].values()]:
                    rec["key"] = keys.get(rec["id"], "")
                saved["version"] = 2
                saved.pop("input_sha", None)
            self.data = saved

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data), encoding="utf-8")
        os.replace(tmp, self.path)


def _price_name(cfg: BatchConfig) -> str:
    return (cfg.price_as or cfg.model) if isinstance(cfg, OpenAICompatibleLLMConfig) else cfg.model


def _batchable(stages: Stages, tier: int) -> BatchConfig | None:
    """The tier's config when its calls can go through its provider's batch API (OpenAI's Batch API or
    Anthropic's Message Batches) at a price with a batch discount."""
    configs = stages.config.tiers or [stages.config.llm]
    cfg = configs[tier]
    if not isinstance(cfg, OpenAICompatibleLLMConfig | AnthropicLLMConfig):
        return None
    price = stages.prices.price(_price_name(cfg))
    return cfg if price is not None and price.batch_discount > 0 else None


def _client(cfg: BatchConfig) -> Any:
    from ragcli.optional import api_key, require

    if isinstance(cfg, AnthropicLLMConfig):  # the SDK reads ANTHROPIC_BASE_URL, as AnthropicLLM's client does
        anthropic = require("anthropic", extra="anthropic", purpose=f"batches of {cfg.model}")
        what = f"{cfg.model} batches at Anthropic"
        return anthropic.Anthropic(
            api_key=api_key(cfg.api_key_env, what=what, config_key="api_key_env"),
            timeout=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )
    from openai import OpenAI

    key = (
        api_key(cfg.api_key_env, what=f"{cfg.model} batches", config_key="api_key_env")
        if cfg.api_key_env
        else "none"
    )
    return OpenAI(base_url=cfg.base_url, api_key=key, timeout=cfg.timeout_s, max_retries=cfg.max_retries)


def run_batch(
    questions: Path,
    out: Path,
    stages: Stages,
    *,
    where: str | None = None,
    budget_tokens: int | None = None,
    poll_s: float = 30.0,
    max_wait_s: float | None = None,
    client_for: Callable[[BatchConfig], Any] = _client,
) -> BatchReport:
    """Answer every question of `questions` into `out`; see the module docstring. Re-run to resume.

    Args:
        where: the filter of the lines that give none (a line's own `where` replaces it).
        budget_tokens: the context cap of every line (as `ragcli query --budget-tokens`).
    """
    _check_out(out)
    parse_where(where, stages.config.filterable)  # a bad --where is one error, not one per line
    items = read_questions(questions, where=where, budget_tokens=budget_tokens)
    _check_lines(items, stages, questions)
    sha = hashlib.sha256(questions.read_bytes()).hexdigest()
    state = _State(out.with_name(out.name + ".state.json"), items, sha)
    done, pending = state.data["done"], state.data["pending"]
    requests: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        if "error" in item or done.get(item["id"], {}).get("key") == item["key"]:
            continue
        # in a provider batch (an edited line is asked on the run after the batch is collected)
        if item["id"] in pending:
            continue
        _prepare_one(item, stages, state, requests, budget_tokens)
    for tier, lines in requests.items():
        _submit(stages, tier, lines, state, client_for)
    deadline = None if max_wait_s is None else time.monotonic() + max_wait_s
    for batch in state.data["batches"]:
        if batch.get("collected"):
            continue
        _collect(stages, batch, state, client_for, poll_s, deadline)
    _write_answers(out, items, done)
    current = [done[i["id"]] for i in items if "key" in i and done.get(i["id"], {}).get("key") == i["key"]]
    return BatchReport(
        answered=sum(1 for r in current if r["status"] == "ok"),
        pending=sum(1 for i in items if "key" in i) - len(current),
        failed=sum(1 for r in current if r["status"] != "ok"),
        batches=[b["batch_id"] for b in state.data["batches"] if b.get("batch_id")],
        out=str(out),
        invalid=[i["error"] for i in items if "error" in i],
    )


def _record(item: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"id": item["id"], "question": item["question"], "key": item["key"], **rest}


def _answered_tier(rec: Recorder, routed: Routed) -> tuple[int, list[dict[str, Any]]]:
    """The tier whose answer was kept (the last cascade attempt made) and the cascade's steps, as in the trace."""
    steps = [dict(t.detail) for t in rec.trace if t.stage == "cascade"]
    made = [s for s in steps if s.get("escalation") != "refused"]
    return (int(made[-1]["tier"] or 0) if made else routed.tier), steps


def _prepare_one(
    item: dict[str, Any],
    stages: Stages,
    state: _State,
    requests: dict[int, list[dict[str, Any]]],
    budget_tokens: int | None = None,
) -> None:
    opts = QueryOptions(where=item.get("where"), budget_tokens=budget_tokens)
    rec = new_recorder(stages, opts)
    try:
        retrieved = retrieve(item["question"], stages, opts, rec)
        prepared = prepare(item["question"], retrieved, stages, opts, rec)
    except BudgetExceeded as exc:
        state.data["done"][item["id"]] = _record(
            item, status="refused", error=str(exc), query_id=rec.query_id
        )
        state.save()
        return
    refused = refuse_without_sources(item["question"], prepared, retrieved, stages, rec)
    if refused is not None:  # the single query path's refusal (no LLM call), as a line
        state.data["done"][item["id"]] = _record(
            item, status="refused", answer=refused.text, error=refused.warnings[-1], query_id=rec.query_id,
            citations=[], usd=rec.usage.usd,
        )  # fmt: skip
        state.save()
        return
    routed = route(item["question"], prepared, stages, opts, rec)
    citations = [
        {"number": c.number, "source": c.source, "chunk_id": c.chunk_id} for c in prepared.context.citations
    ]
    meta = {
        "query_id": rec.query_id,
        "tier": routed.tier,
        "routed_tier": routed.tier,
        "route": routed.decision.reason,
        "citations": citations,
    }
    cfg = _batchable(stages, routed.tier)
    if cfg is None:
        try:
            completion = generate_routed(prepared, routed, stages, opts, rec)
        except BudgetExceeded as exc:
            state.data["done"][item["id"]] = _record(item, status="refused", error=str(exc), **meta)
        else:
            tier, cascade = _answered_tier(rec, routed)
            meta.update(tier=tier, **({"cascade": cascade} if cascade else {}))
            state.data["done"][item["id"]] = _record(
                item, status="ok", answer=completion.text.strip(), model=completion.model, batch=False,
                usd=rec.usage.usd, **meta,
            )  # fmt: skip
        state.save()
        return
    max_tokens = stages.config.prompt.max_output_tokens
    estimate = routed.llm.estimate(prepared.messages, max_tokens)
    price = stages.prices.price(_price_name(cfg))
    discount = price.batch_discount if price is not None else 0.0
    try:  # refuse over budget before submitting; the batch bills later, so nothing stays held
        hold = rec.budget.reserve(
            "the batched llm call", cfg.model, None if estimate.usd is None else estimate.usd * (1 - discount)
        )
        rec.budget.release(hold)
    except BudgetExceeded as exc:
        state.data["done"][item["id"]] = _record(item, status="refused", error=str(exc), **meta)
        state.save()
        return
    requests.setdefault(routed.tier, []).append(
        _request(item["id"], cfg, prepared.messages, routed, max_tokens)
    )
    state.data["pending"][item["id"]] = _record(item, model=cfg.model, **meta)
    state.save()


def _anthropic_id(item_id: str) -> str:
    """A question's id as Anthropic accepts it for a custom_id (itself when it can be)."""
    if _ANTHROPIC_ID.fullmatch(item_id):
        return item_id
    return "q" + hashlib.sha256(item_id.encode()).hexdigest()[:40]


def _request(
    item_id: str, cfg: BatchConfig, messages: Any, routed: Routed, max_tokens: int
) -> dict[str, Any]:
    """One request line of the tier's batch. `item` keeps the question's id where the custom_id cannot."""
    if isinstance(cfg, AnthropicLLMConfig):
        from ragcli.generation.anthropic_llm import AnthropicLLM

        llm = routed.llm
        if not isinstance(llm, AnthropicLLM):  # the tier's own client is what the config builds
            raise InputError(
                f"tier {routed.tier} is configured as {cfg.model} at Anthropic but runs {llm.model_name}"
            )
        params = llm.request_params(messages, max_tokens)
        return {"custom_id": _anthropic_id(item_id), "params": params, "item": item_id}
    body = {
        "model": cfg.model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": max_tokens,
        "temperature": cfg.temperature,
    }
    return {"custom_id": item_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def _submit(
    stages: Stages,
    tier: int,
    lines: list[dict[str, Any]],
    state: _State,
    client_for: Callable[[BatchConfig], Any],
) -> None:
    cfg = _batchable(stages, tier)
    if cfg is None:  # unreachable: requests are only made for batchable tiers
        raise InputError(f"tier {tier} cannot go through a batch API")
    batch: dict[str, Any] = {
        "tier": tier,
        "model": cfg.model,
        "custom_ids": [ln["custom_id"] for ln in lines],
    }
    state.data["batches"].append(batch)
    client = client_for(cfg)
    try:
        if isinstance(cfg, AnthropicLLMConfig):
            batch["items"] = {ln["custom_id"]: ln.pop("item") for ln in lines}
            batch["submitted_after"] = time.time()
            state.save()
            created = client.messages.batches.create(requests=lines)
        else:
            payload = "".join(json.dumps(ln) + "\n" for ln in lines).encode()
            uploaded = client.files.create(file=("requests.jsonl", payload), purpose="batch")
            batch["file_id"] = uploaded.id
            state.save()
            created = client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"ragcli": "query --batch"},
            )
    except Exception as exc:
        raise BackendError(
            f"submitting the batch for {cfg.model} failed: {exc}; run the command again to retry"
        ) from exc
    batch["batch_id"] = created.id
    state.save()
    log.info("submitted batch %s (%d requests to %s)", created.id, len(lines), cfg.model)


def _find_batch(client: Any, batch: dict[str, Any], anthropic: bool) -> str | None:
    """A batch already created for this one (the run stopped before saving its id): OpenAI's by its input file,
    Anthropic's by its request count among those created since the submission began."""
    if not anthropic:
        if not batch.get("file_id"):
            return None
        for b in client.batches.list(limit=100):
            if getattr(b, "input_file_id", None) == batch["file_id"]:
                return str(b.id)
        return None
    since = float(batch.get("submitted_after") or 0.0) - 60.0  # clock skew between this machine and the API
    for b in client.messages.batches.list(limit=100):  # newest first
        if b.created_at.timestamp() < since:
            break
        counts = b.request_counts
        total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
        if total == len(batch["custom_ids"]):
            return str(b.id)
    return None


@dataclass(frozen=True)
class _Result:
    """One request's outcome in a finished batch: its answer and usage, or why it failed."""

    custom_id: str
    model: str = ""
    usage: Any = None
    text: str = ""
    error: str | None = None


def _openai_results(client: Any, info: Any) -> Iterator[_Result]:
    if info.status != "completed" or not info.output_file_id:
        return
    for line in client.files.content(info.output_file_id).text.splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        response = rec.get("response") or {}
        body = response.get("body") or {}
        cid = str(rec.get("custom_id"))
        if rec.get("error") or response.get("status_code") != 200:
            yield _Result(cid, error=json.dumps(rec.get("error") or body))
            continue
        usage = openai_usage(body.get("usage"), batch=True) or _zero()
        text = body["choices"][0]["message"]["content"] or ""
        yield _Result(cid, str(body.get("model") or ""), usage, text)


def _anthropic_results(client: Any, batch_id: str) -> Iterator[_Result]:
    for entry in client.messages.batches.results(batch_id):
        rec = entry.model_dump(mode="json")
        result = rec.get("result") or {}
        cid = str(rec.get("custom_id"))
        if result.get("type") != "succeeded":  # errored, canceled, expired: not billed
            yield _Result(cid, error=json.dumps(result))
            continue
        message = result.get("message") or {}
        usage = replace(anthropic_usage(message.get("usage")), batch=True)
        text = "".join(b.get("text", "") for b in message.get("content") or [] if b.get("type") == "text")
        yield _Result(cid, str(message.get("model") or ""), usage, text)


def _collect(
    stages: Stages,
    batch: dict[str, Any],
    state: _State,
    client_for: Callable[[BatchConfig], Any],
    poll_s: float,
    deadline: float | None,
) -> None:
    cfg = _batchable(stages, int(batch["tier"]))
    if cfg is None:
        raise InputError(
            f"tier {batch['tier']} of the saved batch is no longer a batch tier (an OpenAI-compatible or "
            "Anthropic model with a batch price); restore the config"
        )
    anthropic = isinstance(cfg, AnthropicLLMConfig)
    client = client_for(cfg)
    if not batch.get("batch_id"):
        found = _find_batch(client, batch, anthropic)
        if found is None:  # never created
            raise BackendError("a batch was prepared but not created; delete the state file and run again")
        batch["batch_id"] = found
        state.save()
    while True:
        if anthropic:
            status = client.messages.batches.retrieve(batch["batch_id"]).processing_status
            finished = status == "ended"
        else:
            info = client.batches.retrieve(batch["batch_id"])
            status, finished = info.status, info.status in TERMINAL
        if finished:
            break
        if deadline is not None and time.monotonic() >= deadline:
            log.info("batch %s is %s; run the same command again to resume", batch["batch_id"], status)
            return
        time.sleep(poll_s)
    pending, done = state.data["pending"], state.data["done"]
    items: dict[str, str] = batch.get("items") or {}
    answered: set[str] = set()
    results = _anthropic_results(client, batch["batch_id"]) if anthropic else _openai_results(client, info)
    for res in results:
        cid = items.get(res.custom_id, res.custom_id)
        meta = pending.get(cid)
        if meta is None or done.get(cid, {}).get("key") == meta.get("key"):
            continue  # already recorded by an earlier run: never billed twice in the ledger
        if res.error is not None:
            done[cid] = {**meta, "status": "failed", "error": res.error}
        else:
            usage = stages.prices.priced(_price_name(cfg), res.usage)
            provider = "anthropic-batch" if anthropic else "openai-batch"
            row = LedgerRow.of("llm", res.model or cfg.model, usage, 0.0, meta["query_id"], provider=provider)
            stages.ledger.record(row)
            done[cid] = {**meta, "status": "ok", "answer": res.text.strip(), "batch": True, "usd": usage.usd}
        pending.pop(cid, None)
        answered.add(cid)
        state.save()
    for custom_id in batch["custom_ids"]:
        cid = items.get(custom_id, custom_id)
        if cid in pending and cid not in answered:
            done[cid] = {**pending.pop(cid), "status": "failed", "error": f"batch {status} without a result"}
    batch["collected"] = True
    state.save()


def _zero() -> Any:
    from ragcli.types import Usage

    return Usage(calls=1, batch=True)


def _write_answers(out: Path, items: list[dict[str, Any]], done: dict[str, Any]) -> None:
    """The answers of the lines as they are now, in file order; a bad line as an `invalid` line."""
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for item in items:
            if "error" in item:
                rec = {k: item[k] for k in ("id", "question", "line", "error")} | {"status": "invalid"}
            elif done.get(item["id"], {}).get("key") == item["key"]:
                rec = {k: v for k, v in done[item["id"]].items() if k != "key"}
            else:
                continue
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
