"""The roles of the retrieval stage. Start here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ragcli.retrieval.filters import Filter
from ragcli.types import Chunk, Hit, SparseVector, Usage, Vectors

SearchMode = Literal["dense", "sparse", "hybrid"]


@dataclass(frozen=True)
class SearchRequest:
    """One search against a store. `filter` is already narrowed by any tenant scope."""

    dense: Sequence[float] | None = None
    sparse: SparseVector | None = None
    mode: SearchMode = "dense"
    limit: int = 10
    filter: Filter | None = None
    prefetch_limit: int | None = None
    """Hybrid only: hits each of dense and sparse search hands to fusion (default max(2*limit, 20))."""
    rrf_k: int = 60
    """Hybrid only: the k of reciprocal rank fusion, score = sum of 1 / (k + rank)."""


@dataclass(frozen=True)
class StoredDocument:
    """What the store knows about one ingested document: enough to skip, replace or prune it.

    Built from the payload of its chunks: `doc_hash` and `doc_chunks` are written into every chunk's metadata by
    the ingest pipeline, so a document whose stored chunks disagree with `doc_chunks` (a crash mid-write) is
    seen as incomplete and written again.
    """

    doc_id: str
    source: str
    content_hash: str
    expected_chunks: int
    chunk_ids: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return len(self.chunk_ids) == self.expected_chunks


class VectorStore(Protocol):
    """A collection of chunks with dense (and optionally sparse) vectors and a filterable payload."""

    def ensure_collection(self, dim: int, *, sparse: bool, indexed_fields: dict[str, str]) -> None:
        """Create the collection if missing; `indexed_fields` maps payload field -> 'keyword'|'integer'|'float'|'bool'."""
        ...

    def upsert(
        self, chunks: Sequence[Chunk], dense: Vectors, sparse: Sequence[SparseVector] | None = None
    ) -> None: ...

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of these documents; returns how many chunks went."""
        ...

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id (stale chunks of a re-ingested document); returns how many went."""
        ...

    def documents(self) -> dict[str, StoredDocument]:
        """Every document in the collection, by id."""
        ...

    def search(self, request: SearchRequest) -> list[Hit]: ...

    def search_many(self, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
        """Several searches, results in request order: one round trip where the store can batch them (a Qdrant
        server), one after the other where it cannot (the embedded engine)."""
        ...

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """The stored chunks with these ids, by id; ids the store does not hold are left out."""
        ...

    def dense_vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored dense vectors of these chunks, by id (what ingest embedded); ids the store does not hold are
        left out."""
        ...

    def count(self, filter: Filter | None = None) -> int: ...

    def optimize(self) -> None:
        """Compact the index after a large write so that searches are fast (a no-op where the store does it)."""
        ...

    def close(self) -> None: ...


class SparseEncoder(Protocol):
    """BM25-style sparse vectors for hybrid search."""

    def encode(self, texts: Sequence[str]) -> list[SparseVector]: ...

    def encode_query(self, text: str) -> SparseVector: ...


@dataclass(frozen=True)
class Reranked:
    hits: list[Hit]
    usage: Usage = field(default_factory=Usage)
    dropped_below_cutoff: int = 0
    dropped_duplicates: int = 0


class Reranker(Protocol):
    """Re-scores hits against the query; keeps the top n above a cut-off."""

    @property
    def model_name(self) -> str: ...

    def rerank(self, query: str, hits: Sequence[Hit]) -> Reranked: ...
