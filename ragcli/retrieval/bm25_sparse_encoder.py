"""BM25-style sparse vectors, made by the BM25 embedder that ships inside `qdrant-edge-py`.

A document's vector holds BM25's saturated, length-normalised term frequencies; a query's holds weight 1.0 per
unique term. The IDF half of BM25 is applied by Qdrant at search time (the sparse vector is created with the
IDF modifier), so the score of a query against a document is BM25's. Tokenizing, lowercasing, English
stopwords and stemming happen in the Rust engine; term ids are hashes, so no vocabulary is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragcli.errors import ConfigError
from ragcli.types import SparseVector


class Bm25SparseEncoder:
    """Sparse BM25 vectors for hybrid search.

    Args:
        k: Term-frequency saturation (BM25's k1).
        b: Length normalisation, 0 (none) to 1 (full).
        avg_len: The corpus's average document length in tokens.
        language: Language for stopwords and stemming (e.g. "english").
    """

    def __init__(
        self, k: float = 1.2, b: float = 0.75, avg_len: float = 256.0, language: str = "english"
    ) -> None:
        if k < 0:
            raise ConfigError(f"bm25 k must be >= 0, got {k}")
        if not 0.0 <= b <= 1.0:
            raise ConfigError(f"bm25 b must be between 0 and 1, got {b}")
        if avg_len <= 0:
            raise ConfigError(f"bm25 avg_len must be positive, got {avg_len}")
        self.k, self.b, self.avg_len, self.language = k, b, avg_len, language
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            import qdrant_edge as q

            try:
                self._model = q.Bm25(
                    q.Bm25Config(k=self.k, b=self.b, avg_len=self.avg_len, language=self.language)
                )
            except ValueError as exc:
                raise ConfigError(f"invalid BM25 settings (language {self.language!r}?): {exc}") from exc
        return self._model

    def encode(self, texts: Sequence[str]) -> list[SparseVector]:
        """Document vectors (term-frequency weights; IDF comes from the store)."""
        out = []
        for text in texts:
            v = self.model.embed_document(text)
            out.append(SparseVector(list(v.indices), list(v.values)))
        return out

    def encode_query(self, text: str) -> SparseVector:
        """A query vector: weight 1.0 for each unique term."""
        v = self.model.embed_query(text)
        return SparseVector(list(v.indices), list(v.values))
