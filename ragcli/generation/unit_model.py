"""A learned unit scorer for the compressor, for single-hop questions, behind a question-type gate.

The compressor's hand-set weights (`SentenceCompressor`) rank a unit by the question's words it shares, a second
hop through the names of the best units, and its block's prior (the retriever's score and the block pair model).
That finds the two paragraphs of a multi-hop question. A single-hop question's answer often sits in a unit that
shares few of its words: the second sentence of the best paragraph. At a quarter of LlamaIndex top-5's tokens the
weights kept NQ's answer in about 80 % of prompts, where sending the best chunk whole kept 90.7 %.

`UnitModel` holds two small models, trained on questions with known answers:
- a **gate**: a logistic regression over the question's embedding (lower-cased, without punctuation, so that a
  set's writing habits do not decide) and a few counts of its words (length, conjunctions, relative pronouns,
  "of"); its output is the chance that the question is multi-hop (label: HotpotQA's questions against NQ's);
- **gradient-boosted trees** over each unit's features (`UNIT_FEATURES`: the weights' own parts, the unit's
  position and content, its block's retrieval rank and score, the question's length); label: the unit holds an
  answer. No library runs them: a card holds each tree's nodes.

For a question the gate calls multi-hop (probability >= `gate_at`) the compressor keeps its weights; otherwise
the trees rank the units. When the question's vector is not the gate's (another embedder, none given), a second
gate over the word counts alone decides (`lexical_*`). Measured in two-fold cross-validation by
`benchmarks/qa_unit_model.py` (benchmarks/results/qa.md, 2026-12-04).

`packaged:qa-units` ships inside ragcli (HotpotQA's span-answer questions and NQ's questions after its first 300);
`ragcli train unit-model` retrains the trees on your own questions (`trained:NAME`, keeping the gate); or give a
path to a card written by `benchmarks/qa_unit_model.py --write DIR`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragcli.errors import ResourceMissing
from ragcli.generation.sentence_model import standardized_logit
from ragcli.trained_models import (
    CARDS,
    CardModel,
    load_card_model,
)

FORMAT = "ragcli-unit-model/1"
CARD = CARDS["unit_models"]
UNIT_FEATURES = (
    "lexical",
    "hop",
    "prior",
    "pair",
    "retrieval",
    "lead",
    "bridged",
    "key",
    "score",
    "block_rank_inv",
    "log_index",
    "words_30",
    "has_digit",
    "new_name_share",
    "has_new_name",
    "own_lexical",
    "question_log_words",
    "question_names",
    "score_rank_inv",
)
"""What the trees read per unit, in this order (a card with another list is refused)."""
GATE_WORDS = ("words", "log_words", "conjunctions", "relatives", "of", "articles")
"""The gate's word counts, read after the question's vector."""

PACKAGED_DIR = Path(__file__).resolve().parent / "unit_models"
_NON_WORD = re.compile(r"[^\w\s'-]")
_RELATIVES = frozenset(("that", "which", "who", "whose", "whom", "where", "when"))


def plain_question(question: str) -> str:
    """The question as the gate reads it: lower-cased, punctuation dropped."""
    return _NON_WORD.sub(" ", question.lower()).strip()


def gate_words(question: str) -> list[float]:
    """`GATE_WORDS` of a question."""
    w = plain_question(question).split()
    return [
        float(len(w)),
        math.log1p(len(w)),
        float(sum(t in ("and", "or", "both") for t in w)),
        float(sum(t in _RELATIVES for t in w[1:])),
        float(sum(t == "of" for t in w)),
        float(sum(t in ("the", "a", "an") for t in w)),
    ]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass
class UnitModel(CardModel):
    """The gate (two logistic regressions: vector + word counts, and word counts alone) and the unit trees."""

    name: str
    embedder: str
    """The embedding model whose question vectors the gate reads."""
    gate_weights: list[float]
    gate_bias: float
    gate_mean: list[float]
    gate_scale: list[float]
    lexical_weights: list[float]
    lexical_bias: float
    lexical_mean: list[float]
    lexical_scale: list[float]
    gate_at: float
    """Multi-hop when the gate's probability is at least this: the compressor keeps its weights."""
    baseline: float
    trees: list[dict[str, list[float]]]
    """Each tree's nodes as parallel lists: feature, threshold, left, right, leaf (0/1), value."""
    features: list[str] = field(default_factory=lambda: list(UNIT_FEATURES))
    format: str = FORMAT
    card: dict[str, Any] = field(default_factory=dict)
    _trees: list[tuple[Any, ...]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def dim(self) -> int:
        """The length of the question vectors the gate reads."""
        return len(self.gate_weights) - len(GATE_WORDS)

    def multi_hop(self, question: str, vector: npt.NDArray[np.float32] | None = None) -> float:
        """The gate's chance that `question` is multi-hop; `vector` is its embedding of `plain_question(question)`
        by `embedder` (without one, or of another length, the word counts alone decide)."""
        words = gate_words(question)
        if vector is not None and len(vector) == self.dim:
            x = [*(float(v) for v in vector), *words]
            return _sigmoid(
                standardized_logit(x, self.gate_weights, self.gate_bias, self.gate_mean, self.gate_scale)
            )
        return _sigmoid(
            standardized_logit(
                words, self.lexical_weights, self.lexical_bias, self.lexical_mean, self.lexical_scale
            )
        )

    def scores(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The trees' logit that each unit (a row of `UNIT_FEATURES`) holds the answer."""
        rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
        out = np.full(len(rows), self.baseline, dtype=np.float64)
        at = np.arange(len(rows))
        for feature, threshold, left, right, leaf, value in self._arrays():
            node = np.zeros(len(rows), dtype=np.int64)
            inner = ~leaf[node]
            while inner.any():  # one level of the tree per pass, all rows at once
                go_left = rows[at, feature[node]] <= threshold[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
                inner = ~leaf[node]
            out += value[node]
        return out

    def _arrays(self) -> list[tuple[Any, ...]]:
        if self._trees is None:
            self._trees = [
                (
                    np.asarray(t["feature"], dtype=np.int64),
                    np.asarray(t["threshold"], dtype=np.float64),
                    np.asarray(t["left"], dtype=np.int64),
                    np.asarray(t["right"], dtype=np.int64),
                    np.asarray(t["leaf"], dtype=bool),
                    np.asarray(t["value"], dtype=np.float64),
                )
                for t in self.trees
            ]
        return self._trees

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data.pop("_trees", None)  # the trees as arrays: a cache, not part of the card
        return data

    def save(self, folder: Path) -> Path:
        """Write the card; compact (its trees are some thousand numbers)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CARD
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> UnitModel:
        fields = cls.checked_fields(
            data,
            where,
            what="unit model",
            fmt=FORMAT,
            features=UNIT_FEATURES,
            fix="retrain it with `ragcli train unit-model`, or remove compression.unit_model",
        )
        try:
            model = cls(**fields)
            gate = (model.gate_weights, model.gate_mean, model.gate_scale)
            lexical = (model.lexical_weights, model.lexical_mean, model.lexical_scale)
            values = [float(v) for part in (*gate, *lexical) for v in part]
            values += [
                float(model.gate_bias),
                float(model.lexical_bias),
                float(model.gate_at),
                float(model.baseline),
            ]
            sizes_ok = len({len(p) for p in gate}) == 1 and all(len(p) == len(GATE_WORDS) for p in lexical)
            n_features = len(UNIT_FEATURES)
            for tree in model.trees:
                nodes = len(tree["value"])
                if any(len(tree[k]) != nodes for k in ("feature", "threshold", "left", "right", "leaf")):
                    sizes_ok = False
                inner = [j for j in range(nodes) if not tree["leaf"][j]]
                if any(
                    not 0 <= int(tree["feature"][j]) < n_features
                    or not 0 < int(tree["left"][j]) < nodes
                    or not 0 < int(tree["right"][j]) < nodes
                    for j in inner
                ):
                    sizes_ok = False
                values += [float(v) for v in (*tree["threshold"], *tree["value"])]
        except (TypeError, ValueError, KeyError) as exc:
            raise ResourceMissing(f"{where} holds a damaged unit model ({exc!r}); retrain it") from exc
        scales = (*model.gate_scale, *model.lexical_scale)
        if not sizes_ok or not all(math.isfinite(v) for v in values) or any(s <= 0 for s in scales):
            raise ResourceMissing(f"{where} holds a damaged unit model; retrain it")
        return model


def load_unit_model(spec: str, home: Path | None = None) -> UnitModel:
    """The unit model a config names: `packaged:NAME` (inside ragcli), `trained:NAME` (under
    `<home>/unit_models`, made by `ragcli train unit-model`), or a card file or its folder.

    A model that failed its deployment gate still loads, with a warning: the config asked for it.

    Raises:
        ResourceMissing: nothing readable there, naming what is available.
    """
    return load_card_model(
        spec,
        "unit_models",
        PACKAGED_DIR,
        home,
        UnitModel.from_json,
        what="unit model",
        train="ragcli train unit-model --questions F --name N",
        config_key="compression.unit_model",
    )
