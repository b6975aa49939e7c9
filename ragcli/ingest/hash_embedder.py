"""A deterministic fake embedder for tests of plumbing: no model, no meaning, no network."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from ragcli.errors import InputError
from ragcli.ingest.protocols import Embeddings
from ragcli.types import Usage, Vectors

_WORD = re.compile(r"\S+")


class WhitespaceTokenCounter:
    """Counts whitespace-separated words: a stand-in tokenizer for the fake embedder."""

    def count(self, text: str) -> int:
        return len(_WORD.findall(text))


class HashEmbedder:
    """Hashes each word into one of `dim` buckets (signed) and L2-normalises: same text, same vector.

    Texts that share words get similar vectors, which is enough for tests of search plumbing. It proves
    nothing about relevance.

    Args:
        dim: Vector size.
        max_tokens: The longest input in words; the chunker keeps chunks under it.
    """

    def __init__(self, dim: int = 64, *, max_tokens: int = 256) -> None:
        if dim < 2:
            raise InputError(f"HashEmbedder dim must be at least 2, got {dim}")
        if max_tokens < 8:
            raise InputError(f"HashEmbedder max_tokens must be at least 8, got {max_tokens}")
        self._dim = dim
        self._max_tokens = max_tokens
        self._counter = WhitespaceTokenCounter()
        self.calls = 0
        """How many times `embed` ran (tests use it to prove that nothing was embedded)."""
        self.texts_embedded = 0

    @property
    def model_name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def tokenizer(self) -> WhitespaceTokenCounter:
        return self._counter

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self._dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self._dim
            vec[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed(self, texts: Sequence[str]) -> Embeddings:
        self.calls += 1
        self.texts_embedded += len(texts)
        vectors: Vectors = (
            np.stack([self._vector(t) for t in texts]).astype(np.float32)
            if texts
            else np.zeros((0, self._dim), dtype=np.float32)
        )
        tokens = sum(self._counter.count(t) for t in texts)
        return Embeddings(vectors, Usage(input_tokens=tokens, usd=0.0, calls=1))

    def embed_query(self, text: str) -> Embeddings:
        return self.embed([text])
