"""How well each word of one question finds its match in the other: the features of the cache verifier's `aligned`
kind.

A sentence vector averages a question into one point, so "How do I delete a branch?" and "How do I delete a repo?"
land close: every word but one matches. Reading the encoder's token vectors instead, each token of one question
is matched to its most similar token of the other (cosine; the maximum over the other's tokens, as ColBERT's
MaxSim). A paraphrase matches every token well; a question about another thing leaves one or two tokens with no
good match, and the *worst* match shows it. The features per pair, both directions: the mean, the minimum and the
10th percentile of the matches, how many fall below 0.5 and 0.7; over both directions, the mean, the minimum, how
many fall below 0.6; and the two lengths in tokens. One forward pass of the encoder per question gives both the
token vectors and the sentence vector (so the cosine comes free).

Measured on two QQP splits (benchmarks/results/cache.md, 2026-12-05): with the encoder fine-tuned for one epoch, a
logistic regression over the cosine, these features and the pair features has precision 0.916 and 0.905 at a hit
rate of 0.30, where the cosine alone has 0.894 and 0.886.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragcli.errors import ResourceMissing
from ragcli.generation.pair_features import FEATURE_NAMES, pair_feature_matrix

_SIDE = ("mean", "min", "p10", "below_0.5", "below_0.7")
ALIGN_FEATURES: tuple[str, ...] = (
    *(f"a_to_b_{k}" for k in _SIDE),
    *(f"b_to_a_{k}" for k in _SIDE),
    "both_mean",
    "both_min",
    "both_below_0.6",
    "tokens_a",
    "tokens_b",
)
ALIGNED_INPUT: tuple[str, ...] = ("cosine", *ALIGN_FEATURES, *FEATURE_NAMES)
"""The `aligned` verifier's input columns, in order."""


def alignment_features(a: np.ndarray, b: np.ndarray) -> list[float]:
    """`ALIGN_FEATURES` of two questions' L2-normalised token vectors (rows; [CLS] and [SEP] left out)."""
    sims = a @ b.T
    a_best, b_best = sims.max(axis=1), sims.max(axis=0)
    out: list[float] = []
    for best in (a_best, b_best):
        out += [
            float(best.mean()),
            float(best.min()),
            float(np.percentile(best, 10)),
            float((best < 0.5).sum()),
            float((best < 0.7).sum()),
        ]
    both = np.concatenate([a_best, b_best])
    out += [float(both.mean()), float(both.min()), float((both < 0.6).sum()), float(len(a)), float(len(b))]
    return out


_CHUNK = 512
"""Texts per `encode` call: the padded outputs of one call are held until they are trimmed."""


def _unit_vectors(output: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One text's sentence vector and token vectors ([CLS]/[SEP] and padding left out), each of unit length."""
    n = int(output["attention_mask"].sum())  # the batch's padding is left in with output_value=None
    vecs = output["token_embeddings"][:n].float().numpy()
    sentence = output["sentence_embedding"].float().numpy()
    inner = vecs[1:-1] if len(vecs) > 2 else vecs
    return (
        sentence / max(float(np.linalg.norm(sentence)), 1e-12),
        inner / np.maximum(np.linalg.norm(inner, axis=1, keepdims=True), 1e-12),
    )


class TokenEncoder:
    """A sentence-transformers encoder read for its token vectors as well as its sentence vectors (lazy load,
    safe to share between threads).

    Args:
        model: the encoder's folder (or hub id).
        max_seq_len: tokens read per question.
        batch_size: questions per forward pass.
    """

    def __init__(self, model: str, max_seq_len: int = 64, batch_size: int = 64) -> None:
        self.model_name = model
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ResourceMissing(
                        "the aligned cache verifier needs sentence-transformers; run `pip install 'ragcli[local]'`"
                    ) from exc
                from ragcli.resources import offline_env, resolve_embedding_model

                offline_env()
                try:
                    model = SentenceTransformer(resolve_embedding_model(self.model_name), device="cpu")
                except (OSError, ValueError) as exc:
                    raise ResourceMissing(
                        f"cannot load the verifier's encoder {self.model_name!r}: {exc}; retrain the verifier"
                    ) from exc
                model.max_seq_length = self.max_seq_len
                self._model = model
            return self._model

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's sentence vector (unit length) and its token vectors (unit length, no [CLS]/[SEP])."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), []
        model = self._loaded()
        pooled, tokens = [], []
        for start in range(0, len(texts), _CHUNK):
            outputs = model.encode(
                list(texts[start : start + _CHUNK]), output_value=None, batch_size=self.batch_size
            )
            for o in outputs:
                pooled_one, tokens_one = _unit_vectors(o)
                pooled.append(pooled_one)
                tokens.append(tokens_one)
        return np.asarray(pooled, dtype=np.float32), tokens

    def pair_inputs(self, a_texts: Sequence[str], b_texts: Sequence[str]) -> np.ndarray:
        """`ALIGNED_INPUT` for each pair (each distinct text encoded once), float32."""
        unique = list(dict.fromkeys([*a_texts, *b_texts]))
        pooled, tokens = self.encode(unique)
        row = {t: i for i, t in enumerate(unique)}
        ia = [row[t] for t in a_texts]
        ib = [row[t] for t in b_texts]
        cos = np.sum(pooled[ia] * pooled[ib], axis=1) if ia else np.zeros(0, dtype=np.float32)
        align = [alignment_features(tokens[i], tokens[j]) for i, j in zip(ia, ib, strict=True)]
        feats = np.asarray(pair_feature_matrix(a_texts, b_texts), dtype=np.float32).reshape(len(ia), -1)
        return np.hstack(
            [cos.reshape(-1, 1), np.asarray(align, dtype=np.float32).reshape(len(ia), -1), feats]
        ).astype(np.float32)
