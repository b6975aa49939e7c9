"""A cross-encoder reranker (any sequence-classification model: `trained:NAME`, a folder, a hub id).

The model reads the query and each passage together, which ranks far better than comparing two separately
embedded vectors, at the price of one forward pass per candidate. Scores are probabilities in [0, 1] (the
sigmoid of the model's logit), so `min_score` reads the same for every model. The forward pass runs on a
backend of `cross_encoder_backends` (torch fp32, torch int8, ONNX Runtime), loaded once per process.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragcli.errors import ConfigError, ResourceMissing
from ragcli.retrieval.cross_encoder_backends import BACKENDS
from ragcli.retrieval.protocols import Reranked
from ragcli.retrieval.rerank_selection import check_reranker_args, pair_tokens, rerank_hits
from ragcli.retrieval.reranker_models import load_failed, resolve_reranker_model
from ragcli.types import Hit

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    """Re-scores hits with a cross-encoder and keeps the top n above a cut-off, without near-duplicates.

    Args:
        model: `trained:NAME` (from `ragcli train reranker`), a local folder, or a hub id.
        top_n: How many hits to keep.
        min_score: Drop hits scoring below this (0..1); None keeps all.
        dedupe_threshold: Drop a hit sharing at least this share of words with a better one; None keeps all.
        batch_size: Pairs per forward pass.
        max_length: Tokens per query+passage pair (longer pairs are truncated).
        device: torch device (the torch backend only; int8 and onnx run on the CPU).
        home: ragcli home (where `trained:` rerankers live); default `$RAGCLI_HOME`.
        backend: `torch` (fp32), `int8` (dynamic int8 quantization: ~2x faster on a CPU) or `onnx` (needs
            onnxruntime).
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
        device: str = "cpu",
        home: Path | None = None,
        backend: str = "torch",
    ) -> None:
        check_reranker_args(
            "CrossEncoderReranker",
            model,
            top_n=top_n,
            min_score=min_score,
            dedupe_threshold=dedupe_threshold,
            batch_size=batch_size,
            max_length=max_length,
        )
        if backend not in BACKENDS:
            raise ConfigError(f"reranker backend {backend!r} is not one of {', '.join(BACKENDS)}")
        if backend != "torch" and device != "cpu":
            raise ConfigError(
                f"reranker backend {backend!r} runs on the CPU; use backend: torch for device {device!r}"
            )
        self.backend = backend
        self._name = model
        self.path = resolve_reranker_model(model, home)
        self.top_n, self.min_score, self.dedupe_threshold = top_n, min_score, dedupe_threshold
        self.batch_size, self.max_length, self.device = batch_size, max_length, device
        self._model: Any = None

    @property
    def model_name(self) -> str:
        return self._name

    def load(self) -> Any:
        """Load the model now (it otherwise loads on the first rerank); returns its tokenizer."""
        if self._model is None:
            from ragcli.resources import offline_env
            from ragcli.retrieval.cross_encoder_backends import load_scorer

            offline_env()
            try:
                self._model = load_scorer(
                    self.path, self.backend, self.max_length, self.batch_size, self.device
                )
            except ResourceMissing:
                raise
            except Exception as exc:
                raise load_failed(self._name, exc) from exc
        return self._model[0]

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to the query, in [0, 1]."""
        if not texts:
            return []
        self.load()
        return [_sigmoid(x) for x in self._model[1](query, texts)]

    def count_tokens(self, query: str, texts: Sequence[str]) -> int:
        """Tokens the model reads for these pairs (each capped at max_length)."""
        return pair_tokens(self.load(), query, texts, self.max_length)

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


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
