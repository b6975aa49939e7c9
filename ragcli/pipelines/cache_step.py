"""The answer cache's two steps in the query path: `cache_lookup` before retrieval, `cache_store` after an answer.

    hit = cache_lookup(question, stages, opts, rec)      # an Answer (cost 0) or None
    ...retrieve, prepare, generate...
    cache_store(question, result, retrieved, stages, opts, rec)

A hit is one ledger row (stage `cache`, 0 dollars, `cached`, `saved_usd` = the original call's tokens repriced
at today's prices, `lever` = `cache`). An entry is written only for an answer that the LLM completed (a
refusal, a budget refusal or an error never reaches `cache_store`). The key is the question as asked (or its
standalone form, see `cache.history`) plus its scope: collection, tenant, effective filter, pipeline version
and model tier, so no entry is ever served across tenants or filters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ragcli.generation.cache_protocols import CacheHit, CacheScope, CitedChunk
from ragcli.retrieval.filter_parser import parse_where
from ragcli.retrieval.filters import Filter, all_of
from ragcli.types import Answer, Hit, Usage

if TYPE_CHECKING:
    from ragcli.pipelines.query_pipeline import QueryOptions
    from ragcli.pipelines.recorder import Recorder
    from ragcli.pipelines.stages import Stages

log = logging.getLogger(__name__)


def served_from_cache(trace: Sequence[Any]) -> dict[str, Any] | None:
    """What the answer cache served, read from an answer's trace (the `cache` stage `cache_lookup` notes):
    `tier`, `cached_question` and `saved_usd`; None when the answer was not served from the cache."""
    for t in trace:
        if getattr(t, "stage", "") == "cache" and t.detail.get("hit"):
            saved = t.detail.get("saved_usd")
            return {
                "tier": str(t.detail.get("tier") or "exact"),
                "cached_question": str(t.detail.get("cached_question") or ""),
                "saved_usd": None if saved is None else float(saved),
            }
    return None


def _effective_filter(stages: Stages, where: str | Mapping[str, Any] | Filter | None) -> Filter | None:
    """The same composition retrieval applies: tenant AND config filter AND the query's own."""
    fields = stages.config.filterable
    return all_of(
        stages.tenant_filter, parse_where(stages.config.retrieval.where, fields), parse_where(where, fields)
    )


def cache_key_question(question: str, opts: QueryOptions, stages: Stages) -> str | None:
    """The text a question is cached under, or None when it must not be cached (history without a rewrite)."""
    if not opts.history:
        return question
    if stages.config.cache.history == "standalone" and opts.standalone_question:
        return opts.standalone_question.strip() or None
    return None


def query_scope(stages: Stages, opts: QueryOptions) -> CacheScope:
    """The scope of this query: collection, tenant (id and mandatory filter), effective filter, version, model."""
    from ragcli.generation.cache_build import cache_scope

    return cache_scope(
        stages.config,
        tenant=stages.tenant_filter,
        effective=_effective_filter(stages, opts.where),
        model=stages.llm.model_name,
        tenant_id=opts.tenant,
    )


def _enabled(stages: Stages, opts: QueryOptions) -> bool:
    return stages.config.cache.enabled and not opts.no_cache and not opts.no_answer


def _saved_usd(stages: Stages, hit: CacheHit) -> float:
    """The original call's tokens repriced at today's prices (its recorded dollars when the model is unpriced)."""
    u = hit.entry.usage
    tokens = Usage(
        input_tokens=u.input_tokens, cached_tokens=u.cached_tokens, output_tokens=u.output_tokens, calls=1
    )
    try:
        usd = stages.prices.priced(hit.entry.model, tokens).usd
    except Exception:  # a price source that cannot load must not turn a hit into an error
        log.debug("could not reprice %s", hit.entry.model, exc_info=True)
        usd = None
    return float(usd if usd is not None else (u.usd or 0.0))


def cache_lookup(question: str, stages: Stages, opts: QueryOptions, rec: Recorder) -> Answer | None:
    """Serve a cached answer for this question in this scope, or None (a miss, or the cache is off)."""
    if not _enabled(stages, opts):
        return None
    key = cache_key_question(question, opts, stages)
    if key is None:
        rec.note("cache_lookup", skipped=True, reason="asked with chat history and no standalone rewrite")
        return None
    t0 = time.perf_counter()
    cache = stages.answer_cache
    look = cache.lookup(key, query_scope(stages, opts))
    if look.hit is None:
        rec.note("cache_lookup", time.perf_counter() - t0, hit=False, tried=look.tried,
                 candidates=look.candidates, best_score=look.best_score)  # fmt: skip
        return None
    hit = look.hit
    saved = _saved_usd(stages, hit)
    with rec.stage("cache", hit.entry.model) as s:
        s.usage = Usage(usd=0.0, calls=1)
        s.cached = True
        s.saved_usd = saved
        s.lever = "cache"
        s.detail.update(hit=True, tier=hit.tier, score=round(hit.score, 4), entry=hit.entry.id,
                        cached_question=hit.entry.question, saved_usd=saved)  # fmt: skip
    cache.served(hit, saved)
    stages.route_log.link_cache(
        rec.query_id,
        hit.entry.id,
        "served",
        opts.tenant,
        question=key,
        cached_question=hit.entry.question,
        tier=hit.tier,
    )
    return Answer(
        question=question,
        text=hit.entry.answer,
        citations=list(hit.entry.citations),
        model=hit.entry.model,
        usage=rec.usage,
        trace=rec.trace,
        query_id=rec.query_id,
    )


def _cited(result: Answer, hits: Sequence[Hit]) -> list[CitedChunk]:
    by_id = {h.chunk.id: h.chunk for h in hits}
    out = []
    for c in result.citations:
        chunk = by_id.get(c.chunk_id)
        out.append(
            CitedChunk(c.chunk_id, chunk.doc_id, chunk.content_hash, chunk.source)
            if chunk is not None
            else CitedChunk(c.chunk_id, source=c.source)
        )
    return out


def cache_store(
    question: str, result: Answer, hits: Sequence[Hit], stages: Stages, opts: QueryOptions, rec: Recorder
) -> None:
    """Write a completed answer to the cache (never a refusal, an empty answer or an answer without sources)."""
    if not _enabled(stages, opts) or not result.text.strip() or not result.citations:
        return
    key = cache_key_question(question, opts, stages)
    if key is None:
        return
    t0 = time.perf_counter()
    llm_usage = sum((t.usage for t in rec.trace if t.stage == "llm"), Usage())
    entry = stages.answer_cache.store(
        key,
        query_scope(stages, opts),
        result.text,
        citations=result.citations,
        cited=_cited(result, hits),
        model=result.model,
        usage=llm_usage,
    )
    stages.route_log.link_cache(rec.query_id, entry.id, "stored", opts.tenant)
    rec.note("cache_store", time.perf_counter() - t0, entry=entry.id, cited=len(entry.cited))
