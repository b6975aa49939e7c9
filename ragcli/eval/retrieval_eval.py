"""`ragcli eval retrieval`: index a BEIR corpus once, run every query that has qrels, report ranking quality
and per-stage latency.

Each corpus document becomes one chunk (title and text, as BEIR's dense baselines embed them; the embedder
truncates at its maximum length) whose `doc_id` is the corpus id. The collection is named by a hash of the
corpus file and of the settings that shape the index (embedder, BM25), so a second run on the same corpus and
config reuses it, and documents already stored are never embedded again (an interrupted build resumes). Eval
collections always hold sparse vectors too, so dense, sparse and hybrid runs share one index.

The reranker, when configured, re-orders the top `rerank_depth` candidates; its cut-off and near-duplicate
removal are not applied here (they decide what is packed, not how well the candidates are ranked).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import NoRerankerConfig, PipelineConfig, SentenceTransformersEmbedderConfig
from ragcli.errors import InputError
from ragcli.eval.beir import BeirDoc, Qrels, load_corpus, load_qrels, load_queries
from ragcli.eval.metrics import evaluate, percentile
from ragcli.pipelines.query_pipeline import search_hits
from ragcli.trained_models import TRAINED_PREFIX, model_version, trained_dir
from ragcli.types import Chunk, Usage

log = logging.getLogger(__name__)

BATCH = 64
Progress = Callable[[str, int, int], None]
"""Called with (phase, done, total): phase is 'index' or 'query'."""


@dataclass
class RetrievalEvalResult:
    metrics: dict[str, float]
    queries: int
    mode: str
    reranker: str | None
    collection: str
    corpus_docs: int
    embedded_docs: int
    index_reused: bool
    index_seconds: float
    latency_ms: dict[str, dict[str, float]]
    """Per stage (embed_query, search, rerank, total): p50 and p95 in milliseconds."""
    candidates: int
    run: dict[str, list[str]] = field(default_factory=dict, repr=False)
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    complete: bool = True
    """False when interrupted: the metrics then cover only the queries that ran, and say so."""


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def collection_name(corpus_path: Path, cfg: PipelineConfig) -> str:
    """`beir-<corpus hash>-<index settings hash>`: the same corpus indexed the same way gets the same name."""
    shape: dict[str, object] = {
        "embedder": cfg.embedder.model_dump(mode="json", exclude={"batch_size", "device"}),
        "bm25": cfg.retrieval.bm25.model_dump(mode="json"),
        "layout": "doc-per-chunk-v1",
    }
    emb = cfg.embedder
    if isinstance(emb, SentenceTransformersEmbedderConfig) and emb.model.startswith(TRAINED_PREFIX):
        # a re-trained `trained:NAME` embedder makes a new index (other configs keep their collection names)
        folder = trained_dir("embedders", cfg.home_dir()) / emb.model[len(TRAINED_PREFIX) :]
        shape["embedder_version"] = model_version(folder, "embedders")
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:10]
    return f"beir-{_file_hash(corpus_path)[:12]}-{digest}"


def _chunk_of(doc: BeirDoc) -> Chunk:
    from ragcli.retrieval.payload import point_id

    return Chunk(
        id=point_id(f"beir:{doc.id}"),
        doc_id=doc.id,
        text=doc.full_text,
        source=doc.id,
        section_path=(doc.title,) if doc.title else (),
        metadata={"doc_chunks": 1},
    )


def build_index(
    stages: Any, corpus: dict[str, BeirDoc], *, progress: Progress | None = None
) -> tuple[int, bool, float, Usage]:
    """Embed and store the corpus documents the collection does not hold yet.

    Returns:
        (documents embedded now, whether the index was reused whole, seconds, embedding usage).
    """
    t0 = time.perf_counter()
    store, embedder, sparse = stages.store, stages.embedder, stages.sparse_encoder
    store.ensure_collection(embedder.dim, sparse=True, indexed_fields=dict(stages.config.filterable))
    have = set(store.documents())
    missing = [d for d in corpus.values() if d.id not in have]
    usage = Usage()
    for start in range(0, len(missing), BATCH):
        batch = [_chunk_of(d) for d in missing[start : start + BATCH]]
        texts = [c.text for c in batch]
        emb = embedder.embed(texts)
        usage = usage + emb.usage
        store.upsert(batch, emb.vectors, sparse.encode(texts))
        if progress is not None:
            progress("index", min(start + BATCH, len(missing)), len(missing))
    return len(missing), not missing, time.perf_counter() - t0, usage


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50) * 1000, 2), "p95": round(percentile(values, 95) * 1000, 2)}


def run_queries(
    stages: Any,
    queries: dict[str, str],
    qrels: Qrels,
    *,
    depth: int = 100,
    rerank_depth: int | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, list[str]], dict[str, list[float]], bool]:
    """Search and rerank every judged query; return the run, per-stage seconds, and whether it completed."""
    cfg: PipelineConfig = stages.config
    mode = cfg.retrieval.mode
    reranker = stages.reranker
    rerank_depth = rerank_depth or cfg.retrieval.candidates
    from ragcli.retrieval.filter_parser import parse_where
    from ragcli.retrieval.filters import all_of

    flt = all_of(
        stages.tenant_filter,
        parse_where(cfg.retrieval.where, cfg.filterable) if cfg.retrieval.where else None,
    )
    ids = [q for q in qrels if q in queries]
    run: dict[str, list[str]] = {}
    times: dict[str, list[float]] = {"embed_query": [], "search": [], "rerank": [], "total": []}
    try:
        for n, qid in enumerate(ids, 1):
            text = queries[qid]
            t0 = time.perf_counter()
            dense = stages.embedder.embed_query(text).vectors[0].tolist()
            t1 = time.perf_counter()
            sparse = stages.sparse_encoder.encode_query(text) if mode in ("sparse", "hybrid") else None
            hits = search_hits(stages, dense, sparse, flt, max(depth, rerank_depth))
            t2 = time.perf_counter()
            if reranker is not None and hits:
                head = reranker.rerank(text, hits[:rerank_depth]).hits
                seen = {h.chunk.id for h in head}
                hits = head + [h for h in hits if h.chunk.id not in seen]
            t3 = time.perf_counter()
            run[qid] = [h.chunk.doc_id for h in hits]
            times["embed_query"].append(t1 - t0)
            times["search"].append(t2 - t1)
            if reranker is not None:
                times["rerank"].append(t3 - t2)
            times["total"].append(t3 - t0)
            if progress is not None:
                progress("query", n, len(ids))
    except KeyboardInterrupt:
        log.warning("interrupted after %d of %d queries; the result is partial", len(run), len(ids))
        return run, times, False
    return run, times, True


def eval_config(cfg: PipelineConfig, corpus_path: Path, rerank_depth: int) -> PipelineConfig:
    """The config as eval runs it: a collection per corpus, the reranker re-ordering `rerank_depth` hits."""
    # eval collections always hold sparse vectors, so dense, sparse and hybrid runs share one index
    update: dict[str, Any] = {
        "collection": collection_name(corpus_path, cfg),
        "ingest": cfg.ingest.model_copy(update={"sparse": True}),
    }
    if not isinstance(cfg.reranker, NoRerankerConfig):
        update["reranker"] = cfg.reranker.model_copy(
            update={"top_n": rerank_depth, "min_score": None, "dedupe_threshold": None}
        )
    return cfg.model_copy(update=update)


def evaluate_retrieval(
    cfg: PipelineConfig,
    corpus_path: Path,
    queries_path: Path,
    qrels_path: Path,
    *,
    depth: int = 100,
    rerank_depth: int | None = None,
    stages: Any = None,
    progress: Progress | None = None,
) -> RetrievalEvalResult:
    """Index `corpus_path` (or reuse its index), run the judged queries, and score them with the qrels.

    Args:
        cfg: The pipeline config (embedder, store, retrieval mode, reranker).
        corpus_path, queries_path, qrels_path: BEIR files.
        depth: Hits kept per query (Recall@100 needs 100).
        rerank_depth: Candidates the reranker re-orders (default `retrieval.candidates`).
        stages: Pre-built `Stages` to reuse (their config must come from `eval_config`).
        progress: Progress callback.
    """
    from ragcli.pipelines.stages import Stages

    rerank_depth = rerank_depth or cfg.retrieval.candidates
    corpus = load_corpus(corpus_path)
    queries = load_queries(queries_path)
    qrels = load_qrels(qrels_path)
    judged = [q for q in qrels if q in queries]
    if not judged:
        raise InputError(f"none of the {len(qrels)} queries in {qrels_path} appear in {queries_path}")
    qrels = {q: qrels[q] for q in judged}
    own = stages is None
    stages = stages or Stages.from_config(eval_config(cfg, corpus_path, rerank_depth))
    try:
        embedded, reused, index_s, _ = build_index(stages, corpus, progress=progress)
        run, times, complete = run_queries(
            stages, queries, qrels, depth=depth, rerank_depth=rerank_depth, progress=progress
        )
        scored = {q: qrels[q] for q in run} if not complete else qrels
        reranker = stages.reranker
        return RetrievalEvalResult(
            metrics={k: round(v, 4) for k, v in evaluate(run, scored).items()},
            queries=len(run),
            mode=stages.config.retrieval.mode,
            reranker=reranker.model_name if reranker is not None else None,
            collection=stages.config.collection,
            corpus_docs=len(corpus),
            embedded_docs=embedded,
            index_reused=reused,
            index_seconds=round(index_s, 2),
            latency_ms={k: _stats(v) for k, v in times.items() if v},
            candidates=rerank_depth,
            run=run,
            config=stages.config.model_dump(mode="json"),
            complete=complete,
        )
    finally:
        if own:
            stages.close()
