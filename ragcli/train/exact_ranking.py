"""Exact in-memory rankings (dense, BM25, hybrid RRF) over a small corpus, for gates and benchmarks.

The deployment gate must compare two rankings on the same held-out queries without writing a second index
into the user's store: a corpus of a few thousand documents fits in memory, and exact search over it is what
the store's exact search returns. BM25 uses the store's own encoder (the Rust BM25 of `qdrant-edge-py`) and
Qdrant's IDF (`ln((N - n + 0.5) / (n + 0.5) + 1)`), so its scores are the store's; hybrid is reciprocal rank
fusion of the two, as the store fuses them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ragcli.retrieval.fusion import Ranked, rrf

__all__ = ["Bm25Index", "Ranked", "as_run", "dense_rank", "hybrid_rank", "rerank_head", "rrf"]


def dense_rank(query_vecs: Any, doc_vecs: Any, doc_ids: Sequence[str], k: int) -> list[Ranked]:
    """Top k documents per query by dot product of L2-normalised vectors (cosine)."""
    import numpy as np

    scores = np.asarray(query_vecs, dtype=np.float32) @ np.asarray(doc_vecs, dtype=np.float32).T
    k = min(k, scores.shape[1])
    out: list[Ranked] = []
    for row in scores:
        top = np.argpartition(-row, k - 1)[:k]
        top = top[np.argsort(-row[top], kind="stable")]
        out.append([(doc_ids[i], float(row[i])) for i in top])
    return out


class Bm25Index:
    """BM25 over a list of texts with the store's encoder and IDF.

    Args:
        doc_ids: One id per text.
        texts: The documents.
        encoder: A `Bm25SparseEncoder` (its k, b, avg_len and language are the config's).
    """

    def __init__(self, doc_ids: Sequence[str], texts: Sequence[str], encoder: Any) -> None:
        import numpy as np

        self.doc_ids = list(doc_ids)
        self.encoder = encoder
        postings: dict[int, tuple[list[int], list[float]]] = {}
        for d, vec in enumerate(encoder.encode(texts)):
            for term, weight in zip(vec.indices, vec.values, strict=True):
                docs, weights = postings.setdefault(int(term), ([], []))
                docs.append(d)
                weights.append(float(weight))
        n = len(self.doc_ids)
        self._postings = {
            t: (np.asarray(ds, dtype=np.int64), np.asarray(ws, dtype=np.float32))
            for t, (ds, ws) in postings.items()
        }
        self._idf = {
            t: math.log((n - len(ds) + 0.5) / (len(ds) + 0.5) + 1.0) for t, (ds, _) in postings.items()
        }

    def scores(self, query: str) -> Any:
        """BM25 score of every document for `query` (0 for documents sharing no term)."""
        import numpy as np

        out = np.zeros(len(self.doc_ids), dtype=np.float32)
        q = self.encoder.encode_query(query)
        for term, weight in zip(q.indices, q.values, strict=True):
            hit = self._postings.get(int(term))
            if hit is not None:
                out[hit[0]] += hit[1] * self._idf[int(term)] * float(weight)
        return out

    def rank(self, queries: Sequence[str], k: int) -> list[Ranked]:
        """Top k documents per query; documents scoring 0 are left out, as the store leaves them out."""
        import numpy as np

        out: list[Ranked] = []
        for query in queries:
            row = self.scores(query)
            kk = min(k, int((row > 0).sum()))
            if kk == 0:
                out.append([])
                continue
            top = np.argpartition(-row, kk - 1)[:kk]
            top = top[np.argsort(-row[top], kind="stable")]
            out.append([(self.doc_ids[i], float(row[i])) for i in top])
        return out


def hybrid_rank(
    dense: Sequence[Ranked], sparse: Sequence[Ranked], *, k: int = 60, limit: int = 100
) -> list[Ranked]:
    """Per query, RRF of its dense and sparse rankings (each already cut at the store's prefetch depth)."""
    return [rrf([d, s], k=k, limit=limit) for d, s in zip(dense, sparse, strict=True)]


def as_run(query_ids: Sequence[str], rankings: Sequence[Ranked]) -> dict[str, list[str]]:
    """query id -> document ids, best first (the shape `ragcli.eval.metrics.evaluate` reads)."""
    return {q: [d for d, _ in r] for q, r in zip(query_ids, rankings, strict=True)}


def rerank_head(ranked: Ranked, scores: Mapping[str, float], depth: int) -> Ranked:
    """Re-order the top `depth` of `ranked` by `scores` (ties keep their order); the tail stays as it was."""
    head = sorted(ranked[:depth], key=lambda x: -scores[x[0]])
    return [(d, scores[d]) for d, _ in head] + list(ranked[depth:])
