"""The answer cache's data and roles. Start here for the cache.

An entry is one answered question in one scope: the question (never the packed prompt), the answer with its
citations, the chunks it cited (ids and content hashes, so a re-ingest that replaces them drops it), what the
original call cost, and when it expires. Entry metadata lives in a `CacheMetaStore` (SQLite by default; the
protocol is what a PostgreSQL store implements); the question vectors live in a Qdrant collection of their own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

import numpy as np

from ragcli.types import Citation, Usage

Tier = Literal["exact", "semantic"]


@dataclass(frozen=True)
class CacheScope:
    """Everything besides the question that must match for an answer to be served.

    Two questions share an answer only when they were asked of the same collection, by the same tenant, under
    the same effective filter, through the same pipeline and prompt version, to the same model tier.
    """

    collection: str
    tenant: str = ""
    """The tenant's mandatory filter in canonical form ('' when the pipeline has none)."""
    filter: str = ""
    """The effective filter (tenant AND config AND query) in canonical form."""
    pipeline: str = ""
    """A version of the pipeline and prompt: a hash of the sections that change an answer."""
    model: str = ""
    """The model tier that wrote the answer."""

    @property
    def key(self) -> str:
        """A stable digest of the whole scope: entries are only ever looked up under an equal key."""
        text = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CacheScope:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class CitedChunk:
    """A chunk an answer cited, with the content hash it had then."""

    chunk_id: str
    doc_id: str = ""
    content_hash: str = ""
    source: str = ""


@dataclass
class CacheEntry:
    """One cached answer."""

    id: str
    scope: CacheScope
    question: str
    norm: str
    """The question's exact-match form (`normalise_question`)."""
    answer: str
    citations: list[Citation]
    cited: list[CitedChunk]
    model: str
    usage: Usage
    """What the original call cost (tokens are what saving repricing uses)."""
    created: float
    expires: float | None = None
    hits: int = 0
    saved_usd: float = 0.0
    vector: np.ndarray | None = field(default=None, repr=False)
    """The question's embedding (float32), kept so the verifier needs no second embedding at lookup."""

    @property
    def scope_key(self) -> str:
        return self.scope.key


@dataclass(frozen=True)
class CacheHit:
    """An entry served for a question, by which tier, with what verifier score (1.0 for the exact tier)."""

    entry: CacheEntry
    tier: Tier
    score: float


@dataclass(frozen=True)
class CacheStats:
    entries: int
    expired: int
    lookups: int
    exact_hits: int
    semantic_hits: int
    saved_usd: float
    scopes: int


class CacheMetaStore(Protocol):
    """Where entry metadata lives (SQLite by default; a PostgreSQL store implements the same methods)."""

    def put(self, entry: CacheEntry) -> None: ...

    def get(self, ids: Sequence[str]) -> list[CacheEntry]:
        """The entries with these ids that still exist, in the order given."""
        ...

    def find_exact(self, scope_key: str, norm: str, now: float) -> CacheEntry | None:
        """The newest unexpired entry of this scope whose normalised question equals `norm`."""
        ...

    def record_lookup(self, tier: Tier | None, entry_id: str | None = None, saved_usd: float = 0.0) -> None:
        """Count one lookup; on a hit (`tier` given) add to the entry's hits and savings."""
        ...

    def delete_citing(self, chunk_ids: Sequence[str] = (), doc_ids: Sequence[str] = ()) -> list[str]:
        """Drop entries that cited any of these chunks or documents; returns their ids."""
        ...

    def delete_ids(self, ids: Sequence[str]) -> list[str]:
        """Drop these entries; returns the ids that were there."""
        ...

    def delete_source(self, source: str) -> list[str]:
        """Drop entries that cited a chunk of this source file (exact path, or any path under a folder)."""
        ...

    def delete_expired(self, now: float) -> list[str]: ...

    def delete_all(self) -> list[str]: ...

    def entries(self, limit: int = 50, scope_key: str | None = None) -> list[CacheEntry]:
        """The newest entries first."""
        ...

    def stats(self, now: float) -> CacheStats: ...

    def close(self) -> None: ...


class PairVerifier(Protocol):
    """Decides whether a cached question is the same question as a new one (see `CacheVerifier`)."""

    @property
    def threshold(self) -> float: ...

    def reuses(self, embedder_name: str) -> bool: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def score_vectors(
        self, a_texts: Sequence[str], b_texts: Sequence[str], a_vecs: np.ndarray, b_vecs: np.ndarray
    ) -> np.ndarray: ...
