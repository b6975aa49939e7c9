"""A learned sentence scorer for query-aware packing: which sentences of the retrieved chunks hold the answer.

The lexical scorer of `sentence_selector.py` ranks a sentence by the question's words it shares (BM25, with its
chunk's title in front and a second hop through the names of the best sentences). That finds the sentence that
*restates* the question, which on multi-hop questions leads to the answer; on single-hop questions it often
misses the sentence that *answers*, a later sentence of the same paragraph that shares few or none of the
question's words (on NQ, `lean` kept the answer in 87-90 % of prompts). `SentenceModel` is a logistic regression
over cheap per-sentence features (the lexical scores, the chunk's retrieval score and rank, the sentence's
position and length, whether it holds a number or a name the question lacks) trained on questions with known
answers, label = the sentence holds the answer. No model runs: a dot product per sentence.

The packer does not replace the lexical ranking with it but interleaves the two (the lexical best sentence, then
the model's best, and so on): on HotpotQA the lexical ranking is already good and the model alone lost 4-11 points
in cross-validation; interleaved, each ranking's best sentences get in, and the lexical one going first did better
on HotpotQA than the model going first (benchmarks/results/qa.md, 2026-12-03).

A sentence that shares no word with the question is packed only when the model's logit clears the card's
`floor`: without one, the leftover budget filled with whatever sentences the chunks had (the README's sample
question sent 282 prompt tokens instead of 123). The benchmark script picks the floor in cross-validation
(+0.5), which `ragcli train sentence-model` uses too.

A model is one JSON card; `packaged:qa-sentences` ships inside ragcli (trained by
`benchmarks/sentence_model_train.py` on the tune halves of HotpotQA and NQ); `ragcli train sentence-model` trains
one on your own questions with answers (`trained:NAME`); or give a path to a card.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.errors import ResourceMissing
from ragcli.generation.sentence_selector import terms
from ragcli.trained_models import CARDS, CardModel, load_card_model

FORMAT = "ragcli-sentence-model/1"
CARD = CARDS["sentence_models"]
"""Saved under this name, the one `load_card_model` reads."""
FEATURES = (
    "titled_lexical",
    "own_lexical",
    "hop_lexical",
    "hit_value",
    "hit_rank_inv",
    "first_sentence",
    "log_position",
    "words_30",
    "titled_rank_inv",
    "has_digit",
    "new_name_share",
    "has_new_name",
    "lexical_combined",
    "lexical_combined_rank_inv",
)
"""What the model reads per sentence, in this order (a card with another list is refused)."""

_NAME = re.compile(r"\b[A-Z][\w'-]+")
_DIGIT = re.compile(r"\d")

PACKAGED_DIR = Path(__file__).resolve().parent / "sentence_models"


@dataclass(frozen=True)
class SentenceScores:
    """The packer's lexical scores of one query's sentences (flat over its blocks, in block then sentence order)."""

    titled: Sequence[float]
    """BM25 of the sentence with its chunk's title or section in front."""
    own: Sequence[float]
    """BM25 of the sentence alone."""
    hop: Sequence[float]
    """BM25 (titled) against the second-hop names."""
    combined: Sequence[float]
    """The lexical ranking the packer uses without a model."""


def _rank_inv(scores: Sequence[float]) -> list[float]:
    """1 / (1 + rank) of each score, best first; ties keep their order."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    out = [0.0] * len(scores)
    for rank, j in enumerate(order):
        out[j] = 1.0 / (1 + rank)
    return out


def sentence_features(
    question: str,
    sentences: Sequence[str],
    positions: Sequence[int],
    hit_values: Sequence[float],
    hit_ranks: Sequence[int],
    lexical: SentenceScores,
) -> list[list[float]]:
    """One row of `FEATURES` per sentence.

    Args:
        sentences: the sentences' texts; `positions` their index inside their chunk.
        hit_values: each sentence's chunk relevance in (0, 1] (the retrieval score min-max normalised over the
            query's hits); `hit_ranks` the chunk's 0-based rank.
    """
    best_titled = max(lexical.titled, default=0.0) or 1.0
    best_own = max(lexical.own, default=0.0) or 1.0
    best_hop = max(lexical.hop, default=0.0) or 1.0
    best_combined = max(lexical.combined, default=0.0) or 1.0
    titled_rank = _rank_inv(lexical.titled)
    combined_rank = _rank_inv(lexical.combined)
    asked = set(terms(question))
    rows: list[list[float]] = []
    for k, text in enumerate(sentences):
        names = _NAME.findall(text)
        new = [n for n in names if not set(terms(n)) & asked]
        rows.append(
            [
                lexical.titled[k] / best_titled,
                lexical.own[k] / best_own,
                lexical.hop[k] / best_hop,
                hit_values[k],
                1.0 / (1 + hit_ranks[k]),
                float(positions[k] == 0),
                math.log1p(positions[k]),
                len(text.split()) / 30,
                titled_rank[k],
                float(bool(_DIGIT.search(text))),
                len(new) / max(len(names), 1),
                float(bool(new)),
                lexical.combined[k] / best_combined,
                combined_rank[k],
            ]
        )
    return rows


def standardized_logit(
    row: Sequence[float], weights: Sequence[float], bias: float, mean: Sequence[float], scale: Sequence[float]
) -> float:
    """A logistic regression's logit for one row whose features are standardised with `mean` and `scale`."""
    z = bias
    for x, w, m, s in zip(row, weights, mean, scale, strict=True):
        z += w * (x - m) / s
    return z


def interleave(first: Sequence[float], second: Sequence[float]) -> list[float]:
    """One ranking from two: `first`'s best, then `second`'s best, then `first`'s second, ... (higher = better).

    A sentence takes the better of its two places, so one both rankings like comes early.
    """
    r1 = _rank_inv(first)
    r2 = _rank_inv(second)
    # rank = 1/inv - 1; position in the merged order: 2*rank in the first ranking, 2*rank+1 in the second
    return [-min(2 * (1 / a - 1), 2 * (1 / b - 1) + 1) for a, b in zip(r1, r2, strict=True)]


@dataclass
class SentenceModel(CardModel):
    """A logistic regression over `FEATURES` (standardised with `mean` and `scale`)."""

    name: str
    weights: list[float]
    bias: float
    mean: list[float]
    scale: list[float]
    floor: float | None = None
    """A sentence that shares no word with the question is packed only if its logit is at least this (None: any
    sentence may fill what the budget leaves)."""
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    format: str = FORMAT
    card: dict[str, Any] = field(default_factory=dict)
    """The card's other keys: what it was trained on and how it measured."""

    def scores(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """The model's logit that each sentence (a row of `sentence_features`) holds the answer."""
        return [standardized_logit(row, self.weights, self.bias, self.mean, self.scale) for row in rows]

    def save(self, folder: Path) -> Path:
        return self.save_card(folder, CARD)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> SentenceModel:
        fields = cls.checked_fields(
            data,
            where,
            what="sentence model",
            fmt=FORMAT,
            features=FEATURES,
            fix="retrain it with benchmarks/sentence_model_train.py, or remove packing.sentence_model",
        )
        try:
            model = cls(**fields)
            floor = [] if model.floor is None else [model.floor]
            values = [float(v) for v in (*model.weights, *model.mean, *model.scale, model.bias, *floor)]
        except (TypeError, ValueError) as exc:
            raise ResourceMissing(f"{where} holds a damaged sentence model ({exc}); retrain it") from exc
        n = len(FEATURES)
        if (
            not (len(model.weights) == len(model.mean) == len(model.scale) == n)
            or not all(math.isfinite(v) for v in values)
            or any(s <= 0 for s in model.scale)
        ):
            raise ResourceMissing(f"{where} holds a damaged sentence model; retrain it")
        return model


def load_sentence_model(spec: str, home: Path | None = None) -> SentenceModel:
    """The sentence model a config names: `packaged:NAME` (inside ragcli), `trained:NAME` (under
    `<home>/sentence_models`, made by `ragcli train sentence-model`), or a card file or its folder.

    A model that failed its deployment gate still loads, with a warning: the config asked for it.

    Raises:
        ResourceMissing: nothing readable there, naming what is available.
    """
    return load_card_model(
        spec,
        "sentence_models",
        PACKAGED_DIR,
        home,
        SentenceModel.from_json,
        what="sentence model",
        train="ragcli train sentence-model --questions F --name N",
        config_key="packing.sentence_model",
    )
