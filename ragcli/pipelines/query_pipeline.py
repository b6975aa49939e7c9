"""The query pipeline: question -> search -> rerank -> pack -> LLM -> cited answer, with a trace and ledger rows."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragcli.cost.ledger import LedgerRow
from ragcli.errors import BackendError, BudgetExceeded, InputError, ResourceMissing
from ragcli.generation.prompts import build_messages, count_parts
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.filter_parser import parse_where
from ragcli.retrieval.filters import Filter, all_of
from ragcli.retrieval.protocols import SearchRequest
from ragcli.types import Answer, Completion, Context, Hit, Message, StageTrace, Usage

log = logging.getLogger(__name__)


@dataclass
class QueryOptions:
    """Per-query knobs; `None` means the config's value."""

    where: str | Mapping[str, Any] | Filter | None = None
    """A filter: an expression (`year >= 2020`), the YAML mapping form, or a `Filter`; validated either way."""
    history: Sequence[Message] = ()
    budget_tokens: int | None = None
    top_k: int | None = None
    no_answer: bool = False
    on_token: Callable[[str], None] | None = None
    """Called with each piece of text as the model streams it."""
    extra_trace: list[StageTrace] = field(default_factory=list)


def _query_filter(stages: Stages, where: str | Mapping[str, Any] | Filter | None) -> Filter | None:
    """The tenant scope AND the config's default filter AND the query's own: a query can only narrow."""
    fields = stages.config.filterable
    return all_of(
        stages.tenant_filter, parse_where(stages.config.retrieval.where, fields), parse_where(where, fields)
    )


def retrieve(
    stages: Stages, question: str, opts: QueryOptions, qid: str, trace: list[StageTrace], warnings: list[str]
) -> list[Hit]:
    """Search the store (dense, sparse or hybrid) and rerank; append each stage's trace."""
    cfg = stages.config
    t0 = time.perf_counter()
    emb = stages.embedder.embed_query(question)
    trace.append(
        StageTrace("embed_query", time.perf_counter() - t0, emb.usage, {"model": stages.embedder.model_name})
    )
    stages.ledger.record(LedgerRow.of("embed", stages.embedder.model_name, emb.usage, trace[-1].seconds, qid))

    t0 = time.perf_counter()
    sparse = None
    if cfg.retrieval.mode in ("sparse", "hybrid"):
        encoder = stages.sparse_encoder
        if encoder is None:
            raise InputError(
                f"retrieval.mode is {cfg.retrieval.mode!r} but no sparse encoder is configured; "
                "set ingest.sparse: true and re-ingest"
            )
        sparse = encoder.encode_query(question)
    request = SearchRequest(
        dense=emb.vectors[0].tolist(),
        sparse=sparse,
        mode=cfg.retrieval.mode,
        limit=cfg.retrieval.candidates,
        filter=_query_filter(stages, opts.where),
        prefetch_limit=cfg.retrieval.prefetch,
        rrf_k=cfg.retrieval.rrf_k,
    )
    hits = stages.store.search(request)
    if not hits and stages.store.count() == 0:  # only checked on an empty result: a miss is cheap
        raise InputError(
            f"collection {cfg.collection!r} is empty or does not exist; "
            "run `ragcli ingest PATH...` first (or pick another with --collection)"
        )
    trace.append(
        StageTrace("search", time.perf_counter() - t0, detail={"mode": cfg.retrieval.mode, "hits": len(hits)})
    )

    reranker = stages.reranker
    if reranker is not None and hits:
        t0 = time.perf_counter()
        try:
            result = reranker.rerank(question, hits)
        except (ResourceMissing, BackendError) as exc:
            # Degrade to search order, but never silently: the trace, the log and the answer say so.
            reason = f"reranker {reranker.model_name!r} could not run, hits kept in search order: {exc}"
            log.warning("%s", reason)
            warnings.append(reason)
            trace.append(
                StageTrace("rerank", time.perf_counter() - t0, detail={"skipped": True, "reason": reason})
            )
            return hits[: opts.top_k or cfg.retrieval.top_k]
        seconds = time.perf_counter() - t0
        trace.append(
            StageTrace(
                "rerank",
                seconds,
                result.usage,
                {
                    "model": reranker.model_name,
                    "kept": len(result.hits),
                    "below_cutoff": result.dropped_below_cutoff,
                    "duplicates": result.dropped_duplicates,
                },
            )
        )
        stages.ledger.record(LedgerRow.of("rerank", reranker.model_name, result.usage, seconds, qid))
        return result.hits
    return hits[: opts.top_k or cfg.retrieval.top_k]


def context_budget(stages: Stages, question: str, history: Sequence[Message], cap: int | None) -> int:
    """The model's window minus system prompt, history, question and reserved output; capped by flag or config."""
    llm = stages.llm
    cfg = stages.config
    fixed = count_parts(llm.count_tokens, cfg.prompt.system, "", question, history)["total"]
    room = llm.context_window - fixed - cfg.prompt.max_output_tokens - 16  # 16: chat-template framing
    # A budget given for this query replaces the config's; either way the model's window bounds it.
    chosen = cap if cap is not None else cfg.packing.budget_tokens
    budget = room if chosen is None else min(room, chosen)
    if budget <= 0:
        raise BudgetExceeded(
            f"no room for context: the prompt without sources takes {fixed} tokens of {llm.model_name}'s "
            f"{llm.context_window}-token window with {cfg.prompt.max_output_tokens} reserved for the answer; "
            "shorten the history or system prompt, or lower prompt.max_output_tokens"
        )
    return budget


def answer(question: str, stages: Stages, opts: QueryOptions | None = None) -> Answer:
    """Answer a question over the store with numbered citations, its cost and a per-stage trace."""
    opts = opts or QueryOptions()
    question = question.strip()
    if not question:
        raise InputError('the question is empty; pass the question text, e.g. ragcli query "What is X?"')
    qid = uuid.uuid4().hex[:12]
    trace: list[StageTrace] = list(opts.extra_trace)
    cfg = stages.config

    warnings: list[str] = []
    hits = retrieve(stages, question, opts, qid, trace, warnings)

    t0 = time.perf_counter()
    budget = context_budget(stages, question, opts.history, opts.budget_tokens)
    context: Context = stages.packer.pack(question, hits, budget)
    trace.append(
        StageTrace(
            "pack",
            time.perf_counter() - t0,
            detail={
                "budget": budget,
                "tokens": context.tokens,
                "hits_used": context.hits_used,
                "hits_dropped": context.hits_dropped,
                "truncated": context.truncated,
                **_pack_stats(stages.packer),
            },
        )
    )

    llm = stages.llm
    messages = build_messages(cfg.prompt.system, context.text, question, opts.history)
    parts = count_parts(llm.count_tokens, cfg.prompt.system, context.text, question, opts.history)
    result = Answer(
        question=question,
        text="",
        citations=context.citations,
        model=llm.model_name,
        usage=Usage(),
        trace=trace,
        prompt=messages,
        prompt_tokens=parts,
        token_count_estimated=llm.token_count_is_estimate,
        query_id=qid,
        warnings=warnings,
    )
    if opts.no_answer:
        result.usage = sum((t.usage for t in trace), Usage())
        return result

    t0 = time.perf_counter()
    completion = _call_llm(stages, messages, opts)
    seconds = time.perf_counter() - t0
    attempts = len(getattr(llm, "attempts", ())) or 1
    trace.append(
        StageTrace("llm", seconds, completion.usage, {"model": completion.model, "attempts": attempts})
    )
    provider = str(getattr(llm, "provider", ""))
    stages.ledger.record(
        LedgerRow.of("llm", completion.model, completion.usage, seconds, qid, provider=provider)
    )
    result.text = completion.text.strip()
    result.model = completion.model
    result.usage = sum((t.usage for t in trace), Usage())
    return result


def _pack_stats(packer: object) -> dict[str, int | bool]:
    """What a packer that keeps stats (`TokenBudgetPacker`) saw: tokens before packing, sentences kept."""
    stats = getattr(packer, "last_stats", None)
    if stats is None:
        return {}
    return {
        "candidate_tokens": stats.candidate_tokens,
        "sentences_kept": stats.sentences_kept,
        "sentences_total": stats.sentences_total,
        "selection_used": stats.selection_used,
    }


def _call_llm(stages: Stages, messages: list[Message], opts: QueryOptions) -> Completion:
    max_tokens = stages.config.prompt.max_output_tokens
    if opts.on_token is None:
        return stages.llm.complete(messages, max_tokens=max_tokens)
    final: Completion | None = None
    for piece in stages.llm.stream(messages, max_tokens=max_tokens):
        if isinstance(piece, Completion):
            final = piece
        else:
            opts.on_token(piece)
    if final is None:  # a provider bug, not a user error
        raise RuntimeError(f"{stages.llm.model_name} stream ended without a final completion")
    return final
