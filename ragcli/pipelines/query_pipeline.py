"""The query pipeline: question -> search -> rerank -> pack -> LLM -> cited answer, as steps that return data.

    retrieve(question, stages, opts, rec) -> Retrieved      search the store, rerank
    prepare(question, retrieved, stages, opts, rec) -> Prepared   pack into the budget, build the messages
    generate(prepared, stages, opts, rec) -> Completion     call the LLM (streamed or not)

`answer()` composes them. Every step runs its model calls inside `rec.stage(...)` (see `recorder.py`), which
writes the trace entry and the ledger row together and draws paid calls from the query's one `QueryBudget`.
A new lever (cache lookup, routing, a cascade, compression, a history summary) is one more step here and one
line in `answer()`. Steps keep no state: one `Stages` serves concurrent queries.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ragcli.config import OpenAIEmbedderConfig
from ragcli.cost.budget import QueryBudget, shared_limits
from ragcli.errors import BackendError, BudgetExceeded, InputError, ResourceMissing
from ragcli.generation.prompts import build_messages, count_parts
from ragcli.generation.protocols import LLM
from ragcli.pipelines.recorder import Recorder
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.filter_parser import parse_where
from ragcli.retrieval.filters import Filter, all_of
from ragcli.retrieval.protocols import SearchRequest
from ragcli.types import Answer, Completion, Context, Hit, Message, SparseVector, StageTrace, Usage

log = logging.getLogger(__name__)

NO_SOURCES_ANSWER = "No sources match this question, so there is nothing to answer from."


@dataclass
class QueryOptions:
    """Per-query knobs; `None` means the config's value."""

    where: str | Mapping[str, Any] | Filter | None = None
    """A filter: an expression (`year >= 2020`), the YAML mapping form, or a `Filter`; validated either way."""
    history: Sequence[Message] = ()
    retrieval_query: str | None = None
    """Search (and rerank) with this text instead of the question: a chat follow-up's standalone form
    (`Conversation.retrieval_query`). The prompt still carries the question as asked."""
    budget_tokens: int | None = None
    top_k: int | None = None
    no_answer: bool = False
    no_cache: bool = False
    """Neither read nor write the answer cache for this query."""
    standalone_question: str | None = None
    """A question asked with history, rewritten to stand alone: the answer cache keys it by this text
    (`cache.history: standalone`); without it such a question is never cached."""
    on_token: Callable[[str], None] | None = None
    """Called with each piece of text as the model streams it."""
    tenant: str = ""
    """Who the query is for: its ledger rows carry it, and `cost.budgets.per_tenant_day_usd` applies to it."""
    extra_trace: list[StageTrace] = field(default_factory=list)


@dataclass(frozen=True)
class Retrieved:
    """What retrieval found: the hits for packing (ranked), the filter it applied, and what it had to skip."""

    hits: list[Hit]
    filter: Filter | None = None
    warnings: tuple[str, ...] = ()
    query_vector: tuple[float, ...] | None = None
    """The question's dense vector the first search used (the compressor compares it with the sources')."""


@dataclass(frozen=True)
class Prepared:
    """The prompt that will be sent: messages, the packed context, the budget it was packed to, tokens per part."""

    messages: list[Message]
    context: Context
    budget_tokens: int
    parts: dict[str, int]


def _query_filter(stages: Stages, where: str | Mapping[str, Any] | Filter | None) -> Filter | None:
    """The tenant scope AND the config's default filter AND the query's own: a query can only narrow."""
    fields = stages.config.filterable
    return all_of(
        stages.tenant_filter, parse_where(stages.config.retrieval.where, fields), parse_where(where, fields)
    )


def _embed_estimate(stages: Stages, question: str) -> Usage | None:
    """The most embedding the question can cost; `None` for a local embedder (free, nothing to reserve)."""
    c = stages.config.embedder
    if not isinstance(c, OpenAIEmbedderConfig):
        return None
    tokens = len(question.encode("utf-8")) // 2 + 8  # a safe over-estimate: a token holds >= 2 bytes of text
    return Usage(input_tokens=tokens, usd=stages.prices.estimate_usd(c.model, tokens, 0), calls=1)


def search_hits(
    stages: Stages, dense: list[float], sparse: SparseVector | None, query_filter: Filter | None, limit: int
) -> list[Hit]:
    """The store's search in the config's mode; hybrid with a trained fusion runs the dense and the BM25 search
    apart (the store's own fusion hides each side's scores) and fuses them with the model."""
    cfg = stages.config
    fusion = stages.fusion if cfg.retrieval.mode == "hybrid" else None
    if fusion is not None:
        # each side as deep as the store's own hybrid would prefetch, and never shallower than training saw
        n = max(fusion.prefetch, cfg.retrieval.prefetch or max(2 * limit, 20))
        dense_hits, sparse_hits = stages.store.search_many(
            [
                SearchRequest(dense=dense, mode="dense", limit=n, filter=query_filter),
                SearchRequest(sparse=sparse, mode="sparse", limit=n, filter=query_filter),
            ]
        )
        sentences = stages.sentence_vectors if fusion.uses_sentences else None
        return fusion.fuse_hits(dense_hits, sparse_hits, limit, query_vector=dense, sentences=sentences)
    request = SearchRequest(
        dense=dense,
        sparse=sparse,
        mode=cfg.retrieval.mode,
        limit=limit,
        filter=query_filter,
        prefetch_limit=cfg.retrieval.prefetch,
        rrf_k=cfg.retrieval.rrf_k,
    )
    return stages.store.search(request)


def _search(
    text: str, stages: Stages, query_filter: Filter | None, rec: Recorder
) -> tuple[list[Hit], float, tuple[float, ...]]:
    """Embed `text` (a ledger stage) and search the store in the config's mode: the hits, the seconds the search
    took (the embedding is timed by its own stage) and the dense query vector."""
    cfg = stages.config
    embedder = stages.embedder
    with rec.stage("embed_query", embedder.model_name, estimate=_embed_estimate(stages, text)) as s:
        emb = embedder.embed_query(text)
        s.usage = emb.usage
    t0 = time.perf_counter()
    sparse = None
    if cfg.retrieval.mode in ("sparse", "hybrid"):
        encoder = stages.sparse_encoder
        if encoder is None:
            raise InputError(
                f"retrieval.mode is {cfg.retrieval.mode!r} but no sparse encoder is configured; "
                "set ingest.sparse: true and re-ingest"
            )
        sparse = encoder.encode_query(text)
    dense = emb.vectors[0].tolist()
    hits = search_hits(stages, dense, sparse, query_filter, cfg.retrieval.candidates)
    return hits, time.perf_counter() - t0, tuple(dense)


def retrieve(question: str, stages: Stages, opts: QueryOptions, rec: Recorder) -> Retrieved:
    """Search the store (dense, sparse or hybrid) and rerank; then, with `retrieval.second_hop`, search again
    for what the best sentences of those hits name."""
    cfg = stages.config
    question = opts.retrieval_query or question
    query_filter = _query_filter(stages, opts.where)
    hits, seconds, vector = _search(question, stages, query_filter, rec)
    if not hits and stages.store.count() == 0:  # only checked on an empty result: a miss is cheap
        raise InputError(
            f"collection {cfg.collection!r} is empty or does not exist; "
            "run `ragcli ingest PATH...` first (or pick another with --collection)"
        )
    fusion = stages.fusion if cfg.retrieval.mode == "hybrid" else None
    how = {"fusion": fusion.model_name} if fusion is not None else {}
    rec.note("search", seconds, mode=cfg.retrieval.mode, hits=len(hits), **how)

    top_k = opts.top_k or cfg.retrieval.top_k
    reranker = stages.reranker
    if reranker is None or not hits:
        return _second_hop(question, Retrieved(hits[:top_k], query_filter, query_vector=vector), stages, rec)
    t0 = time.perf_counter()
    try:
        with rec.stage("rerank", reranker.model_name) as s:
            result = reranker.rerank(question, hits)
            s.usage = result.usage
            s.detail.update(
                kept=len(result.hits),
                below_cutoff=result.dropped_below_cutoff,
                duplicates=result.dropped_duplicates,
            )
    except (ResourceMissing, BackendError) as exc:
        # Degrade to search order, but never silently: the trace, the log and the answer say so.
        reason = f"reranker {reranker.model_name!r} could not run, hits kept in search order: {exc}"
        log.warning("%s", reason)
        rec.note("rerank", time.perf_counter() - t0, skipped=True, reason=reason)
        kept = Retrieved(hits[:top_k], query_filter, (reason,), vector)
        return _second_hop(question, kept, stages, rec)
    return _second_hop(question, Retrieved(result.hits, query_filter, query_vector=vector), stages, rec)


def _second_hop(question: str, first: Retrieved, stages: Stages, rec: Recorder) -> Retrieved:
    """`retrieval.second_hop: N`: search again with the question plus the names that the two best-matching
    sentences of the first hits hold and the question lacks (a multi-hop question's bridge: "the band that
    released X" -> the band's name), and add up to N hits the first search did not find, after the first ones.
    Their scores are the second search's own."""
    n = stages.config.retrieval.second_hop
    if not n or not first.hits:
        return first
    from ragcli.generation.sentence_selector import LexicalSentenceSelector, expansion_terms, split_sentences

    t0 = time.perf_counter()
    texts = [h.chunk.text[s.start : s.end] for h in first.hits for s in split_sentences(h.chunk.text)]
    ranked = LexicalSentenceSelector().score(question, texts)
    names = expansion_terms(question, texts, ranked)
    if not names:
        rec.note("second_hop", time.perf_counter() - t0, names="", added=0)
        return first
    seen = {h.chunk.id for h in first.hits}
    found, _, _ = _search(f"{question} {' '.join(names)}", stages, first.filter, rec)
    extra = [h for h in found if h.chunk.id not in seen][:n]
    rec.note("second_hop", time.perf_counter() - t0, names=" ".join(names), added=len(extra))
    return replace(first, hits=[*first.hits, *extra])


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


def prepare(
    question: str, retrieved: Retrieved, stages: Stages, opts: QueryOptions, rec: Recorder
) -> Prepared:
    """Pack the hits into the token budget and build the messages, counting tokens per prompt part."""
    cfg = stages.config
    llm = stages.llm
    t0 = time.perf_counter()
    budget = context_budget(stages, question, opts.history, opts.budget_tokens)
    context = stages.packer.pack(question, retrieved.hits, budget)
    st = context.stats
    rec.note(
        "pack",
        time.perf_counter() - t0,
        budget=budget,
        tokens=context.tokens,
        hits_used=context.hits_used,
        hits_dropped=context.hits_dropped,
        truncated=context.truncated,
        candidate_tokens=st.candidate_tokens,
        sentences_kept=st.sentences_kept,
        sentences_total=st.sentences_total,
        selection_used=st.selection_used,
    )
    messages = build_messages(cfg.prompt.system, context.text, question, opts.history)
    parts = count_parts(llm.count_tokens, cfg.prompt.system, context.text, question, opts.history)
    return Prepared(messages, context, budget, parts)


def generate(
    prepared: Prepared, stages: Stages, opts: QueryOptions, rec: Recorder, llm: LLM | None = None
) -> Completion:
    """Call the LLM (`stages.llm` unless another tier is given) with the prepared messages, within the budget."""
    llm = llm or stages.llm
    max_tokens = stages.config.prompt.max_output_tokens
    estimate = llm.estimate(prepared.messages, max_tokens)
    with rec.stage("llm", llm.model_name, estimate=estimate) as s:
        completion = _call_llm(llm, prepared.messages, max_tokens, opts.on_token)
        s.usage = completion.usage
        s.model = completion.model
        s.provider = completion.provider
        s.detail["attempts"] = completion.attempts
        s.parts = prepared.parts
    return completion


def _call_llm(
    llm: LLM, messages: list[Message], max_tokens: int, on_token: Callable[[str], None] | None
) -> Completion:
    if on_token is None:
        return llm.complete(messages, max_tokens=max_tokens)
    final: Completion | None = None
    for piece in llm.stream(messages, max_tokens=max_tokens):
        if isinstance(piece, Completion):
            final = piece
        else:
            on_token(piece)
    if final is None:  # an adapter bug, not a user error
        raise BackendError(f"{llm.model_name}'s stream ended without a final completion")
    return final


def metered_call(
    stages: Stages, llm: LLM, stage: str, *, hidden: bool = True
) -> Callable[[Sequence[Message], int], Completion]:
    """A call to `llm` outside a question (a chat summary): each call is its own recorded stage, its worst case
    reserved from the budget before it runs, its row in the ledger (`hidden`: a cost the user did not ask for)."""

    def call(messages: Sequence[Message], max_tokens: int) -> Completion:
        rec = new_recorder(stages, QueryOptions())
        with rec.stage(
            stage, llm.model_name, estimate=llm.estimate(messages, max_tokens), hidden=hidden
        ) as run:
            done = llm.complete(messages, max_tokens=max_tokens)
            run.usage, run.provider = done.usage, done.provider
        return done

    return call


def new_recorder(stages: Stages, opts: QueryOptions) -> Recorder:
    """A recorder for one query: a fresh id, the query's budget (per query, per day, per tenant)."""
    cost = stages.config.cost
    limits = shared_limits(cost, opts.tenant)
    per_query = (
        cost.budgets.per_query_usd if cost.budgets.per_query_usd is not None else cost.max_usd_per_query
    )
    budget = QueryBudget(per_query, stages.budget_store if limits else None, limits)
    return Recorder(
        stages.ledger,
        uuid.uuid4().hex[:12],
        budget,
        tenant=opts.tenant,
        trace=list(opts.extra_trace),
        prices=stages.prices,
        preset=stages.config.name,
    )


def check_question(question: str, stages: Stages) -> None:
    """Refuse a question too long for the model's window, saying so (not advice about history or system prompt).

    `answer()` runs it on every question; a chat runs it first, so that one bad turn does not end the chat.
    """
    llm, cfg = stages.llm, stages.config
    window = llm.context_window
    reserved = llm.count_tokens(cfg.prompt.system) + cfg.prompt.max_output_tokens + 16  # 16: chat framing
    tokens = llm.count_tokens(question)
    if tokens + reserved >= window:
        raise InputError(
            f"the question is too long: {len(question):,} characters ({tokens:,} tokens), but {llm.model_name}'s "
            f"{window:,}-token window leaves at most {max(0, window - reserved - 1):,} tokens for the question "
            f"after the system prompt and the {cfg.prompt.max_output_tokens} tokens reserved for the answer; "
            "shorten the question (or use a model with a larger window)"
        )


def answer(question: str, stages: Stages, opts: QueryOptions | None = None) -> Answer:
    """Answer a question over the store with numbered citations, its cost and a per-stage trace."""
    opts = opts or QueryOptions()
    question = question.strip()
    if not question:
        raise InputError('the question is empty; pass the question text, e.g. ragcli query "What is X?"')
    check_question(question, stages)
    # the lever steps build on the steps above (they import this module), so they are imported at call time
    from ragcli.pipelines.cache_step import cache_lookup, cache_store
    from ragcli.pipelines.compress_step import compress
    from ragcli.pipelines.route_step import generate_routed, route

    rec = new_recorder(stages, opts)
    cached = cache_lookup(question, stages, opts, rec)
    if cached is not None:
        return cached
    retrieved = retrieve(question, stages, opts, rec)
    prepared = prepare(question, retrieved, stages, opts, rec)
    prepared = compress(question, prepared, retrieved, stages, opts, rec)
    if opts.no_answer:
        return _finish(_answer_of(question, prepared, retrieved, stages.llm, rec), rec)
    refused = refuse_without_sources(question, prepared, retrieved, stages, rec)
    if refused is not None:
        return refused
    result = _answer_of(question, prepared, retrieved, stages.llm, rec)
    routed = route(question, prepared, stages, opts, rec)
    completion = generate_routed(prepared, routed, stages, opts, rec)
    result.text = completion.text.strip()
    result.model = completion.model
    # which sources the answer had and cited: what `ragcli feedback ... --relevant N` labels later
    stages.route_log.record_sources(
        rec.query_id,
        stages.config.collection,
        [(c.number, c.chunk_id) for c in result.citations],
        result.text,
    )
    cache_store(question, result, retrieved.hits, stages, opts, rec)
    return _finish(result, rec)


def _answer_of(question: str, prepared: Prepared, retrieved: Retrieved, llm: LLM, rec: Recorder) -> Answer:
    return Answer(
        question=question,
        text="",
        citations=prepared.context.citations,
        model=llm.model_name,
        usage=Usage(),
        trace=rec.trace,
        prompt=prepared.messages,
        prompt_tokens=prepared.parts,
        token_count_estimated=llm.token_count_is_estimate,
        query_id=rec.query_id,
        warnings=list(retrieved.warnings),
    )


def refuse_without_sources(
    question: str, prepared: Prepared, retrieved: Retrieved, stages: Stages, rec: Recorder
) -> Answer | None:
    """The answer when no source survived search, filters, cut-offs and the budget and the config says
    `prompt.no_sources: refuse`: it says why instead of paying a model to invent an answer (the LLM's stage is
    noted as skipped). None when there are sources, or the config calls the LLM anyway. The query path and the
    batch path both ask it."""
    if prepared.context.citations or stages.config.prompt.no_sources != "refuse":
        return None
    result = _answer_of(question, prepared, retrieved, stages.llm, rec)
    if retrieved.filter is not None and not retrieved.hits:
        why, fix = "the filter matched no chunk", "Widen the filter or rephrase."
    elif retrieved.hits and prepared.context.stats.candidate_tokens > prepared.budget_tokens:
        why = (
            f"{len(retrieved.hits)} chunk(s) were found but none fit the {prepared.budget_tokens}-token context "
            "budget"
        )
        fix = "Raise --budget-tokens (or packing.budget_tokens)."
    else:
        why, fix = "no chunk was found or kept above the cut-offs", "Widen the filter or rephrase."
    reason = f"{why}; the LLM was not called (prompt.no_sources: refuse). {fix}"
    rec.note("llm", skipped=True, reason=reason)
    result.text = NO_SOURCES_ANSWER
    result.warnings.append(reason)
    return _finish(result, rec)


def _finish(result: Answer, rec: Recorder) -> Answer:
    result.usage = rec.usage
    return result
