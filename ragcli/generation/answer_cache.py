"""The precision-first answer cache: an exact tier, then a semantic tier checked by a trained verifier.

Lookup, for a question in a scope (collection, tenant, effective filter, pipeline version, model tier):

1. exact: the normalised question (`normalise_question`) in the same scope, unexpired;
2. semantic: the nearest cached questions of the same scope by embedding, searched in a Qdrant collection of
   the cache's own (a filter on the scope key, so the engine never even returns another scope's entries),
   then re-checked against the metadata store (same scope, unexpired, not invalidated), then scored by the
   verifier; the best candidate is served only when its score clears the verifier's calibrated threshold.

Better a miss than a wrong hit: with no verifier the semantic tier is off unless a cosine threshold is asked
for explicitly (the GPTCache recipe, kept for comparison).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ragcli.errors import InputError
from ragcli.generation.cache_protocols import (
    CacheEntry,
    CacheHit,
    CacheMetaStore,
    CacheScope,
    CitedChunk,
    PairVerifier,
)
from ragcli.generation.pair_features import normalise_question
from ragcli.ingest.protocols import Embedder
from ragcli.retrieval.filters import Condition
from ragcli.retrieval.protocols import SearchRequest, VectorStore
from ragcli.types import Chunk, Citation, Usage

log = logging.getLogger(__name__)

CACHE_SOURCE = "ragcli:answer-cache"
"""The `source` of the points the cache writes into its own collection."""

OPTIMIZE_EVERY = 1000
"""Entries between two calls of the index's `optimize()` (the embedded engine indexes only when asked)."""


@dataclass(frozen=True)
class CacheLookup:
    """The outcome of one lookup: the hit (or None) and what was tried, for the trace."""

    hit: CacheHit | None
    tried: str
    """`exact`, `semantic` (both tiers ran) or why the semantic tier did not run."""
    candidates: int = 0
    best_score: float | None = None
    vector: np.ndarray | None = None
    """The question's embedding when the semantic tier computed it (reusable by retrieval and store)."""


class AnswerCache:
    """Exact + verified semantic answer cache over a metadata store and a vector collection.

    Args:
        meta: Entry metadata (SQLite by default).
        index: A vector store holding one point per entry (the question's embedding), in its own collection.
        embedder: Embeds questions for the index (the pipeline's embedder, so a lookup's vector can be reused).
        verifier: Scores candidate pairs; None turns the semantic tier off unless `cosine_threshold` is set.
        cosine_threshold: Serve on cosine alone at this threshold (no verifier): not precision-safe.
        ttl_s: Seconds an entry lives; None keeps it until invalidated.
        candidates: Nearest cached questions the verifier scores.
        clock: Seconds since the epoch (tests pass a fake).
    """

    def __init__(
        self,
        meta: CacheMetaStore,
        index: VectorStore,
        embedder: Embedder,
        *,
        verifier: PairVerifier | None = None,
        cosine_threshold: float | None = None,
        ttl_s: float | None = 7 * 24 * 3600.0,
        candidates: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if candidates < 1:
            raise InputError(f"cache candidates must be at least 1, got {candidates}")
        if ttl_s is not None and ttl_s <= 0:
            raise InputError(f"cache ttl_s must be positive (or None for no expiry), got {ttl_s}")
        if cosine_threshold is not None and not -1.0 <= cosine_threshold <= 1.0:
            raise InputError(f"cosine_threshold must be in [-1, 1], got {cosine_threshold}")
        self.meta = meta
        self.index = index
        self.embedder = embedder
        self.verifier = verifier
        self.cosine_threshold = cosine_threshold
        self.ttl_s = ttl_s
        self.candidates = candidates
        self.clock = clock
        self._index_ready = False

    @property
    def semantic(self) -> bool:
        return self.verifier is not None or self.cosine_threshold is not None

    def _ensure_index(self) -> None:
        if not self._index_ready:
            self.index.ensure_collection(self.embedder.dim, sparse=False, indexed_fields={})
            self._index_ready = True

    def embed(self, question: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_query(question).vectors[0], dtype=np.float32)

    # ---------------------------------------------------------------- lookup

    def lookup(self, question: str, scope: CacheScope, *, vector: np.ndarray | None = None) -> CacheLookup:
        """Find a cached answer for `question` in exactly this scope; counts the lookup."""
        now = self.clock()
        exact = self.meta.find_exact(scope.key, normalise_question(question), now)
        if exact is not None and exact.scope == scope:
            hit = CacheHit(exact, "exact", 1.0)
            return CacheLookup(hit, "exact", 1, 1.0, vector)
        if not self.semantic:
            self.meta.record_lookup(None)
            return CacheLookup(None, "exact only (no verifier)")
        vec = self.embed(question) if vector is None else np.asarray(vector, dtype=np.float32)
        self._ensure_index()
        found = self.index.search(
            SearchRequest(
                dense=vec.tolist(), limit=self.candidates, filter=Condition("doc_id", "eq", scope.key)
            )
        )
        # the index is a hint: the metadata store decides what exists, in which scope, until when
        entries = [
            e
            for e in self.meta.get([h.chunk.id for h in found])
            if e.scope == scope and (e.expires is None or e.expires > now)
        ]
        if not entries:
            self.meta.record_lookup(None)
            return CacheLookup(None, "semantic", 0, None, vec)
        scores = self._scores(question, vec, entries)
        best = int(np.argmax(scores))
        threshold = (
            self.verifier.threshold if self.verifier is not None else float(self.cosine_threshold or 1.0)
        )
        if scores[best] >= threshold:
            return CacheLookup(CacheHit(entries[best], "semantic", float(scores[best])), "semantic", len(entries),
                               float(scores[best]), vec)  # fmt: skip
        self.meta.record_lookup(None)
        return CacheLookup(None, "semantic", len(entries), float(scores[best]), vec)

    def _scores(self, question: str, vec: np.ndarray, entries: Sequence[CacheEntry]) -> np.ndarray:
        stored = [e.vector for e in entries]
        if self.verifier is None:
            if any(v is None for v in stored):
                others = self.embedder.embed([e.question for e in entries]).vectors
                return np.asarray(others @ vec, dtype=np.float64)
            return np.asarray(np.stack([v for v in stored if v is not None]) @ vec, dtype=np.float64)
        texts = [e.question for e in entries]
        if self.verifier.reuses(self.embedder.model_name) and all(v is not None for v in stored):
            qv = np.repeat(vec[None, :], len(entries), axis=0)
            cv = np.stack([v for v in stored if v is not None])
        else:
            vecs = self.verifier.embed([question, *texts])
            qv, cv = np.repeat(vecs[:1], len(entries), axis=0), vecs[1:]
        return self.verifier.score_vectors([question] * len(entries), texts, qv, cv)

    def served(self, hit: CacheHit, saved_usd: float = 0.0) -> None:
        """Count a hit that was actually served, with the dollars it saved (the original call repriced)."""
        self.meta.record_lookup(hit.tier, hit.entry.id, saved_usd)

    # ---------------------------------------------------------------- store

    def store(
        self,
        question: str,
        scope: CacheScope,
        answer: str,
        *,
        citations: Sequence[Citation] = (),
        cited: Sequence[CitedChunk] = (),
        model: str = "",
        usage: Usage | None = None,
        vector: np.ndarray | None = None,
    ) -> CacheEntry:
        """Write one answered question; returns the entry."""
        if not question.strip() or not answer.strip():
            raise InputError("the answer cache stores a non-empty question with a non-empty answer")
        now = self.clock()
        vec = self.embed(question) if vector is None else np.asarray(vector, dtype=np.float32)
        entry = CacheEntry(
            id=str(uuid.uuid4()),
            scope=scope,
            question=question,
            norm=normalise_question(question),
            answer=answer,
            citations=list(citations),
            cited=list(cited),
            model=model,
            usage=usage or Usage(),
            created=now,
            expires=None if self.ttl_s is None else now + self.ttl_s,
            vector=vec,
        )
        self.meta.put(entry)
        if self.semantic or self._index_ready:
            self._ensure_index()
            point = Chunk(id=entry.id, doc_id=scope.key, text=question, source=CACHE_SOURCE)
            self.index.upsert([point], vec[None, :].astype(np.float32))
            if self.index.count() % OPTIMIZE_EVERY == 0:
                self.optimize()
        return entry

    def optimize(self) -> None:
        """Index the cached questions' vectors (`VectorStore.optimize`): at 100k entries the embedded engine's
        search drops from ~25 to ~2.5 ms p50 (benchmarks/results/cache_100k.md). Nearly free when there is nothing to
        index; `store` calls it every `OPTIMIZE_EVERY` entries, `ragcli cache optimize` on demand."""
        self._ensure_index()
        t0 = time.perf_counter()
        self.index.optimize()
        log.info("answer cache: index optimised in %.1fs", time.perf_counter() - t0)

    # ---------------------------------------------------------------- invalidation

    def _drop_points(self, ids: list[str]) -> None:
        if ids and self.index.count() > 0:
            self.index.delete_chunks(ids)

    def invalidate(self, chunk_ids: Sequence[str] = (), doc_ids: Sequence[str] = ()) -> int:
        """Drop entries that cited any of these chunks or documents; returns how many went."""
        ids = self.meta.delete_citing(chunk_ids, doc_ids)
        self._drop_points(ids)
        return len(ids)

    def drop(self, entry_ids: Sequence[str]) -> int:
        """Drop these entries (feedback said their answer was bad); returns how many went."""
        ids = self.meta.delete_ids(entry_ids)
        self._drop_points(ids)
        return len(ids)

    def invalidate_source(self, source: str) -> int:
        """Drop entries that cited a file (or any file under a folder)."""
        ids = self.meta.delete_source(source)
        self._drop_points(ids)
        return len(ids)

    def purge_expired(self) -> int:
        ids = self.meta.delete_expired(self.clock())
        self._drop_points(ids)
        return len(ids)

    def clear(self) -> int:
        ids = self.meta.delete_all()
        self._drop_points(ids)
        return len(ids)

    def close(self) -> None:
        self.meta.close()
        self.index.close()
