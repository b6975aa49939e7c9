"""Which two blocks answer the question together: a learned prior for multi-hop prompt compression.

A multi-hop question ("the manga's author was born in what year?") needs two paragraphs: one the question names
("I"s ... written by Masakazu Katsura") and one that paragraph names ("Masakazu Katsura (born 1962)"). Scored one
at a time, the second looks no more relevant than the distractors beside it. Scored in pairs it stands out: the
pair covers the question's words between them, one names the other's title, and the second's opening sentence
is of the kind the question asks for ("which company" -> "... is a company").

`pair_features` describes each pair of titled blocks; `BlockPairModel` weighs those features (a linear ranker
trained so that the supporting pair outscores every other pair of its question, `benchmarks/compression_pairs.py`
on HotpotQA). A block's prior is the score of the best pair it belongs to. The compressor adds it to its coarse
prior (beside the retriever's scores when the caller gives them) when at least two blocks have titles.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragcli.errors import ConfigError
from ragcli.generation.sentence_selector import LexicalSentenceSelector, terms

PAIR_FEATURES = (
    "union_coverage",  # IDF-weighted share of the question's terms found in either block
    "title_union_coverage",  # the same, in either block's title
    "coverage_sum",
    "bm25_sum",  # each block's BM25 against the question, scaled by the best block's
    "bm25_max",
    "sentence_sum",  # each block's best sentence (title in front), scaled by the best sentence
    "sentence_max",
    "title_in_question_sum",  # share of a title's terms that the question holds
    "title_in_question_max",
    "title_named_sum",  # the whole title (without a "(film)" qualifier) occurs in the question
    "link",  # one block's text names the other's title
    "link_both",
    "link_sentence",  # the best-scoring sentence that names the other's title
    "link_from_named",  # that, times the share of the naming block's title the question holds
    "coverage_min",
    "asked_kind_sum",  # the question's "which X" words in a block's opening sentence
    "asked_kind_max",
)
MAX_BLOCKS = 40
"""Above this many blocks no pairs are scored (the per-block prior alone is used)."""
PACKAGED = Path(__file__).with_name("block_pairs.json")

_QUALIFIER = re.compile(r"\s*\(.*\)$")
_MARKER = re.compile(r"^\[\d+\]\s*")
_SECTION = re.compile(r"\s+\|\s.*$")
_ASKED = re.compile(r"\b(?:which|what|whose)\s+(.*)", re.IGNORECASE)
_ASKED_WHO = re.compile(r"\bwho\s+(?:was|is|were|are)\s+(?:the\s+)?(\w+)", re.IGNORECASE)


def title_name(title: str) -> str:
    """A title without its citation marker, section path and qualifier: "The Fault in Our Stars (film)" and
    "[2] The Fault in Our Stars (film) | Plot" (a packed source's header) -> "The Fault in Our Stars"."""
    return _QUALIFIER.sub("", _SECTION.sub("", _MARKER.sub("", title.strip()))).strip()


def asked_kind(question: str) -> list[str]:
    """The words naming what the question asks for: "Which French ace pilot ..." -> [french, ace, pilot]."""
    m = _ASKED.search(question)
    kind = terms(m.group(1))[:3] if m else []
    if not kind:
        m = _ASKED_WHO.search(question)
        kind = terms(m.group(1)) if m else []
    return kind


def pair_features(
    question: str,
    titles: Sequence[str],
    bodies: Sequence[str],
    unit_blocks: Sequence[int],
    unit_texts: Sequence[str],
    unit_scores: Sequence[float],
    selector: LexicalSentenceSelector | None = None,
) -> tuple[list[tuple[int, int]], npt.NDArray[np.float64]]:
    """The pairs `(i, j)`, `i < j`, of blocks and one row of `PAIR_FEATURES` each.

    Args:
        question: the question.
        titles: each block's title ("" for none).
        bodies: each block's text without its title.
        unit_blocks, unit_texts, unit_scores: the sentences of all blocks, the block each is in, and its lexical
            score against the question (the compressor's BM25 with the block's title in front).
        selector: the BM25 scorer for whole blocks.
    """
    n = len(titles)
    selector = selector or LexicalSentenceSelector()
    q_terms = list(dict.fromkeys(terms(question)))
    q_lower = question.lower()
    names = [title_name(t) for t in titles]
    docs = [set(terms(f"{t} {b}")) for t, b in zip(titles, bodies, strict=True)]
    title_terms = [set(terms(name)) for name in names]
    df = {t: sum(t in d for d in docs) for t in q_terms}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q_terms}
    total = sum(idf.values()) or 1.0
    coverage = [sum(idf[t] for t in q_terms if t in d) / total for d in docs]
    bm25 = np.array(
        selector.score_terms(
            terms(question), [Counter(terms(f"{t} {b}")) for t, b in zip(titles, bodies, strict=True)]
        )
    )
    bm25 = bm25 / (bm25.max() or 1.0)
    best_unit = max(unit_scores, default=0.0) or 1.0
    sentence = np.zeros(n)
    for b, s in zip(unit_blocks, unit_scores, strict=True):
        sentence[b] = max(sentence[b], s / best_unit)
    q_set = set(terms(question))
    in_question = np.array([len(tt & q_set) / len(tt) if tt else 0.0 for tt in title_terms])
    named = np.array([1.0 if len(nm) >= 3 and nm.lower() in q_lower else 0.0 for nm in names])
    lowered = [b.lower() for b in bodies]
    mentions = np.zeros((n, n))  # [j, i]: block j's text names block i's title
    for i, nm in enumerate(names):
        key = nm.lower()
        if len(key) < 3:
            continue
        for j in range(n):
            if j != i and key in lowered[j]:
                mentions[j, i] = 1.0
    via = np.zeros((n, n))  # [j, i]: best score of a sentence of block j naming block i's title
    for b, text, s in zip(unit_blocks, unit_texts, unit_scores, strict=True):
        low = text.lower()
        for i, nm in enumerate(names):
            if i != b and len(nm) >= 3 and nm.lower() in low:
                via[b, i] = max(via[b, i], s / best_unit)
    kind = asked_kind(question)
    opening: dict[int, set[str]] = {}
    for b, text in zip(unit_blocks, unit_texts, strict=True):
        opening.setdefault(b, set(terms(text)))  # units come in order: the first one seen is the opening
    asked = np.array([sum(t in opening.get(i, set()) for t in kind) / max(1, len(kind)) for i in range(n)])
    pairs = list(combinations(range(n), 2))
    rows = np.zeros((len(pairs), len(PAIR_FEATURES)))
    for k, (i, j) in enumerate(pairs):
        rows[k] = (
            sum(idf[t] for t in q_terms if t in docs[i] or t in docs[j]) / total,
            sum(idf[t] for t in q_terms if t in title_terms[i] or t in title_terms[j]) / total,
            coverage[i] + coverage[j],
            bm25[i] + bm25[j],
            max(bm25[i], bm25[j]),
            sentence[i] + sentence[j],
            max(sentence[i], sentence[j]),
            in_question[i] + in_question[j],
            max(in_question[i], in_question[j]),
            named[i] + named[j],
            max(mentions[i, j], mentions[j, i]),
            mentions[i, j] * mentions[j, i],
            max(via[i, j], via[j, i]),
            via[i, j] * in_question[i] + via[j, i] * in_question[j],
            min(coverage[i], coverage[j]),
            asked[i] + asked[j],
            max(asked[i], asked[j]),
        )
    return pairs, rows


@dataclass(frozen=True)
class BlockPairModel:
    """A linear score over `PAIR_FEATURES`; a block's prior is its best pair's score."""

    weights: npt.NDArray[np.float64]
    trained_on: str = ""

    def pair_scores(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(rows @ self.weights, dtype=np.float64)

    def block_priors(
        self, pairs: Sequence[tuple[int, int]], rows: npt.NDArray[np.float64], n: int
    ) -> list[float]:
        """Each block's best pair score (blocks in no pair get the lowest score)."""
        scores = self.pair_scores(rows) if len(pairs) else np.zeros(0)
        floor = float(scores.min()) if len(scores) else 0.0
        prior = [floor] * n
        for (i, j), s in zip(pairs, scores, strict=True):
            prior[i] = max(prior[i], float(s))
            prior[j] = max(prior[j], float(s))
        return prior

    def to_json(self) -> dict[str, object]:
        return {
            "kind": "ragcli-block-pairs",
            "features": list(PAIR_FEATURES),
            "weights": [round(float(w), 6) for w in self.weights],
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_json(cls, data: dict[str, object], source: str = "block pair model") -> BlockPairModel:
        if data.get("kind") != "ragcli-block-pairs" or data.get("features") != list(PAIR_FEATURES):
            raise ConfigError(
                f"{source} is not a block pair model for this ragcli (its features differ); retrain it with "
                "benchmarks/compression_pairs.py --write"
            )
        weights = data.get("weights")
        if not isinstance(weights, list) or len(weights) != len(PAIR_FEATURES):
            raise ConfigError(f"{source}: expected {len(PAIR_FEATURES)} weights")
        return cls(np.asarray(weights, dtype=np.float64), str(data.get("trained_on", "")))


@lru_cache(maxsize=1)
def packaged_pair_model() -> BlockPairModel:
    """The model that ships with ragcli (trained on HotpotQA's supporting paragraphs)."""
    return BlockPairModel.from_json(json.loads(PACKAGED.read_text(encoding="utf-8")), str(PACKAGED))
