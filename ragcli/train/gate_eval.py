"""Run the deployment gate for a freshly trained model: its ranking against the one it replaces, on held-out
labeled queries, over the labeled corpus (exact search in memory, so the user's index is never touched).

- A reranker replaces the config's first-stage ranking (dense, BM25 or hybrid with the configured embedder, fused
  by RRF or by the trained fusion `retrieval.fusion` names) by its re-ordering of that ranking's top `depth`.
- An embedder replaces the dense half of that ranking (dense alone, or hybrid's dense side): the corpus is
  embedded with both models. This is the cost a re-index would pay anyway, measured first.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragcli.config import PipelineConfig
from ragcli.errors import InputError
from ragcli.train.deployment_gate import GateVerdict, paired_bootstrap, per_query_ndcg
from ragcli.train.exact_ranking import Bm25Index, Ranked, as_run, dense_rank, hybrid_rank, rerank_head

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class GateSet:
    """Held-out labeled queries and the corpus they are ranked over."""

    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    docs: dict[str, str]


def split_queries(qids: Sequence[str], holdout: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, held-out) query ids: a seeded random `holdout` share is kept away from training."""
    if not 0 < holdout < 1:
        raise InputError(f"--holdout must be between 0 and 1 (a share of the labeled queries), got {holdout}")
    ids = sorted(qids)
    random.Random(seed).shuffle(ids)
    cut = max(2, round(len(ids) * holdout))
    if len(ids) - cut < 2:
        raise InputError(
            f"{len(ids)} labeled queries are too few to hold {holdout:.0%} out for the gate and train on the "
            "rest; label more queries or pass --no-gate"
        )
    return ids[cut:], ids[:cut]


class _Ranker:
    """The config's first-stage ranking over the gate corpus, with a swappable embedder."""

    def __init__(self, cfg: PipelineConfig, gs: GateSet, depth: int) -> None:
        from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
        from ragcli.retrieval.build import build_fusion

        self.cfg, self.gs, self.depth = cfg, gs, depth
        self.doc_ids = list(gs.docs)
        self.qids = list(gs.qrels)
        self.mode = cfg.retrieval.mode
        # the ranking a query gets today: with a trained fusion, that fusion over the two exact rankings
        self.fusion = build_fusion(cfg) if self.mode == "hybrid" else None
        self._sparse: list[Ranked] | None = None
        if self.mode in ("sparse", "hybrid"):
            bm = cfg.retrieval.bm25
            enc = Bm25SparseEncoder(k=bm.k, b=bm.b, avg_len=bm.avg_len, language=bm.language)
            index = Bm25Index(self.doc_ids, [gs.docs[d] for d in self.doc_ids], enc)
            self._sparse = index.rank([gs.queries[q] for q in self.qids], self.prefetch)

    @property
    def prefetch(self) -> int:
        if self.fusion is not None:  # as deep as the query path searches each side for the fusion
            return max(self.fusion.prefetch, self.cfg.retrieval.prefetch or 0)
        return self.cfg.retrieval.prefetch or max(2 * 100, 20)

    @property
    def name(self) -> str:
        return f"hybrid ({self.fusion.model_name})" if self.fusion is not None else self.mode

    def rank(self, embedder: Any) -> list[Ranked]:
        if self.mode == "sparse":
            assert self._sparse is not None
            return self._sparse
        docs = embedder.embed([self.gs.docs[d] for d in self.doc_ids]).vectors
        qs = embedder.embed([self.gs.queries[q] for q in self.qids]).vectors
        dense = dense_rank(qs, docs, self.doc_ids, self.prefetch)
        if self.mode == "dense":
            return dense
        assert self._sparse is not None
        if self.fusion is not None:
            return [self.fusion.fuse(d, s, 100) for d, s in zip(dense, self._sparse, strict=True)]
        return hybrid_rank(dense, self._sparse, k=self.cfg.retrieval.rrf_k, limit=100)


def _verdict(
    qids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    base: Sequence[Ranked],
    new: Sequence[Ranked],
    names: tuple[str, str],
) -> GateVerdict:
    sub = {q: qrels[q] for q in qids}
    return paired_bootstrap(
        per_query_ndcg(as_run(qids, base), sub),
        per_query_ndcg(as_run(qids, new), sub),
        baseline_name=names[0],
        candidate_name=names[1],
    )


def gate_reranker(
    cfg: PipelineConfig, gs: GateSet, reranker: Any, *, depth: int = 20, progress: Progress | None = None
) -> GateVerdict:
    """The trained reranker re-ordering the config's ranking's top `depth`, against that ranking."""
    from ragcli.ingest.build import build_embedder

    ranker = _Ranker(cfg, gs, depth)
    if progress:
        progress(
            f"gate: ranking {len(gs.qrels)} held-out queries over {len(gs.docs)} documents ({ranker.name})"
        )
    base = ranker.rank(build_embedder(cfg.embedder, home=cfg.home_dir()))
    new = []
    for q, ranked in zip(ranker.qids, base, strict=True):
        head = [d for d, _ in ranked[:depth]]
        scores = dict(zip(head, reranker.score(gs.queries[q], [gs.docs[d] for d in head]), strict=True))
        new.append(rerank_head(ranked, scores, depth))
    return _verdict(ranker.qids, gs.qrels, base, new, (ranker.name, f"{ranker.name} + reranker top {depth}"))


def gate_embedder(
    cfg: PipelineConfig, gs: GateSet, embedder: Any, *, progress: Progress | None = None
) -> GateVerdict:
    """The config's ranking with the trained embedder in place of the configured one, against it as it is."""
    from ragcli.ingest.build import build_embedder

    ranker = _Ranker(cfg, gs, 20)
    if ranker.mode == "sparse":
        raise InputError(
            "retrieval.mode is sparse: an embedder does not change the ranking; use dense or hybrid"
        )
    if progress:
        progress(f"gate: embedding {len(gs.docs)} documents with the configured embedder and the trained one")
    base = ranker.rank(build_embedder(cfg.embedder, home=cfg.home_dir()))
    new = ranker.rank(embedder)
    return _verdict(ranker.qids, gs.qrels, base, new, (ranker.name, f"{ranker.name}, trained embedder"))


def gate_set_from_pairs(pairs: Sequence[Any], held_out: set[str]) -> GateSet:
    """A gate set from labeled pairs: the held-out queries, ranked over every passage in the file."""
    docs: dict[str, str] = {}
    ids: dict[str, str] = {}
    for p in pairs:
        if p.passage not in ids:
            ids[p.passage] = f"p{len(ids)}"
            docs[ids[p.passage]] = p.passage
    queries = {q: q for q in held_out}
    qrels: dict[str, dict[str, int]] = {q: {} for q in held_out}
    for p in pairs:
        if p.query in held_out and p.label > 0.5:
            qrels[p.query][ids[p.passage]] = 1
    qrels = {q: r for q, r in qrels.items() if r}
    return GateSet({q: queries[q] for q in qrels}, qrels, docs)


def hold_out(
    *,
    pairs_file: Any = None,
    corpus: Any = None,
    queries: Any = None,
    qrels: Any = None,
    holdout: float = 0.2,
    seed: int = 0,
) -> tuple[set[str], GateSet]:
    """Choose the held-out queries of a labeled set and build their gate set.

    Returns:
        The held-out keys to exclude from training (query ids for BEIR input, query texts for a pairs file)
        and the gate set (BEIR: ranked over the whole corpus; pairs: over every passage in the file).
    """
    if pairs_file is not None:
        from ragcli.train.reranker_training import load_pairs_jsonl

        pairs = load_pairs_jsonl(pairs_file)
        positives = {p.query for p in pairs if p.label > 0.5}
        _, held = split_queries(sorted(positives), holdout, seed)
        return set(held), gate_set_from_pairs(pairs, set(held))
    full = labeled_set(corpus=corpus, queries=queries, qrels=qrels)
    _, held = split_queries(list(full.qrels), holdout, seed)
    return set(held), GateSet({q: full.queries[q] for q in held}, {q: full.qrels[q] for q in held}, full.docs)


def labeled_set(
    *, pairs_file: Any = None, corpus: Any = None, queries: Any = None, qrels: Any = None
) -> GateSet:
    """Every labeled query with a relevant document in the corpus (BEIR files), or every query with a positive
    passage ranked over all the file's passages (a pairs file)."""
    if pairs_file is not None:
        from ragcli.train.reranker_training import load_pairs_jsonl

        pairs = load_pairs_jsonl(pairs_file)
        return gate_set_from_pairs(pairs, {p.query for p in pairs if p.label > 0.5})
    if corpus is None or queries is None or qrels is None:
        raise InputError("give either --pairs FILE or all of --corpus, --queries and --qrels")
    from ragcli.eval.beir import load_corpus, load_qrels, load_queries

    docs, qtexts, judged = load_corpus(corpus), load_queries(queries), load_qrels(qrels)
    usable = [q for q, r in judged.items() if q in qtexts and any(g > 0 and d in docs for d, g in r.items())]
    return GateSet(
        {q: qtexts[q] for q in usable},
        {q: dict(judged[q]) for q in usable},
        {d: doc.full_text for d, doc in docs.items()},
    )
