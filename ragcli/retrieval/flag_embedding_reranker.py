"""A cross-encoder reranker through FlagEmbedding's `FlagReranker` (the bge-reranker family's own runner).

It loads any sequence-classification model folder, including one trained with `ragcli train reranker`
(`model: trained:NAME`). Scores are normalised to [0, 1] (sigmoid), as for the sentence-transformers reranker.
FlagEmbedding is an optional extra (`pip install 'ragcli[flag]'`); it is imported on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragcli.optional import require
from ragcli.retrieval.protocols import Reranked
from ragcli.retrieval.rerank_selection import check_reranker_args, pair_tokens, rerank_hits
from ragcli.retrieval.reranker_models import load_failed, resolve_reranker_model
from ragcli.types import Hit

log = logging.getLogger(__name__)


class FlagEmbeddingReranker:
    """Re-scores hits with FlagEmbedding's `FlagReranker`; same selection knobs as `CrossEncoderReranker`.

    Args:
        model: `trained:NAME`, a local folder, or a hub id (e.g. `BAAI/bge-reranker-base` with internet).
        top_n: How many hits to keep.
        min_score: Drop hits scoring below this (0..1); None keeps all.
        dedupe_threshold: Drop a hit sharing at least this share of words with a better one; None keeps all.
        batch_size: Pairs per forward pass.
        max_length: Tokens per query+passage pair.
        use_fp16: Half precision (GPU only).
        device: torch device.
        home: ragcli home (where `trained:` rerankers live).
    """

    def __init__(
        self,
        model: str,
        *,
        top_n: int = 5,
        min_score: float | None = None,
        dedupe_threshold: float | None = 0.95,
        batch_size: int = 32,
        max_length: int = 256,
        use_fp16: bool = False,
        device: str = "cpu",
        home: Path | None = None,
    ) -> None:
        check_reranker_args(
            "FlagEmbeddingReranker",
            model,
            top_n=top_n,
            min_score=min_score,
            dedupe_threshold=dedupe_threshold,
            batch_size=batch_size,
            max_length=max_length,
        )
        self._name = model
        self.path = resolve_reranker_model(model, home)
        self.top_n, self.min_score, self.dedupe_threshold = top_n, min_score, dedupe_threshold
        self.batch_size, self.max_length, self.use_fp16, self.device = (
            batch_size,
            max_length,
            use_fp16,
            device,
        )
        self._model: Any = None

    @property
    def model_name(self) -> str:
        return self._name

    def load(self) -> Any:
        """Load the model now (it otherwise loads on the first rerank)."""
        if self._model is None:
            flag = require(
                "FlagEmbedding", extra="flag", purpose=f"reranker type 'flag' (model {self._name!r})"
            )
            FlagReranker = flag.FlagReranker
            try:
                self._model = FlagReranker(self.path, use_fp16=self.use_fp16, devices=[self.device])
            except Exception as exc:
                raise load_failed(self._name, exc) from exc
            log.info("loaded FlagReranker %s", self._name)
        return self._model

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to the query, in [0, 1]."""
        if not texts:
            return []
        scores = self.load().compute_score(
            [[query, t] for t in texts],
            batch_size=self.batch_size,
            max_length=self.max_length,
            normalize=True,
        )
        if isinstance(scores, int | float):
            return [float(scores)]
        return [float(s) for s in scores]

    def count_tokens(self, query: str, texts: Sequence[str]) -> int:
        """Tokens the model reads for these pairs (each capped at max_length)."""
        return pair_tokens(self.load().tokenizer, query, texts, self.max_length)

    def rerank(self, query: str, hits: Sequence[Hit]) -> Reranked:
        return rerank_hits(
            query,
            hits,
            score=self.score,
            count_tokens=self.count_tokens,
            top_n=self.top_n,
            min_score=self.min_score,
            dedupe_threshold=self.dedupe_threshold,
        )
