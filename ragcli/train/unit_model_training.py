"""`ragcli train unit-model`: learn which units (sentences and clauses) of the packed sources hold the answer, for
the compressor's single-hop path (`compression.unit_model`), from questions with answers.

Each labeled question goes through the config's query path as far as the compressor: `retrieve` (the second
search included) and `prepare` (the packer at the config's budget). The compressor lists the packed context's
units with the features of `ragcli.generation.unit_model.UNIT_FEATURES`, and a unit is labeled 1 when it holds one
of the question's answers (normalised text containment, as `ragcli eval qa` scores answer-in-context).
Gradient-boosted trees (scikit-learn's histogram boosting, the settings `benchmarks/qa_unit_model.py` measured)
are fitted on the units of all but a held-out share of the questions and exported as node lists into the card, so
no library runs them at query time.

The question-type gate is not retrained: a question's type (one passage or several) is not in a file of answers.
The new card keeps the gate of the config's unit model, else of `packaged:qa-units`. The held-out questions gate
the new card: each packed context compressed to the config's target with the config's compressor as it is and
with the new unit model, paired bootstrap on answer kept per question.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from ragcli.errors import InputError
from ragcli.eval.normalize import answer_in_normalized, normalize_answer
from ragcli.generation.compression_types import CompressionTarget
from ragcli.generation.unit_model import GATE_WORDS, UnitModel, load_unit_model
from ragcli.train.deployment_gate import GateVerdict, paired_bootstrap
from ragcli.train.gate_eval import split_queries
from ragcli.train.sentence_model_training import QAPair, usable_pairs
from ragcli.trained_models import check_name

Progress = Callable[[str], None]
BASE_GATE = "packaged:qa-units"
"""Whose gate a new card keeps when the config names no unit model."""


@dataclass(frozen=True)
class UnitModelReport:
    """What `train_unit_model` did: where the card is, on how much data, and whose gate it kept."""

    name: str
    path: str
    questions: int
    units: int
    positives: int
    trees: int
    gate_from: str
    seconds: float


def fit_trees(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
) -> tuple[float, list[dict[str, list[float]]]]:
    """Gradient-boosted trees (150, 7 leaves, at least 60 units a leaf, L2 1.0) as the card's node lists, checked
    to reproduce scikit-learn's own scores."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
    except ImportError as exc:
        raise InputError("training a unit model needs scikit-learn: pip install 'ragcli[train]'") from exc

    m = HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.05,
        max_leaf_nodes=7,
        min_samples_leaf=60,
        l2_regularization=1.0,
        random_state=0,
    )
    m.fit(x, y)
    trees: list[dict[str, list[float]]] = []
    for (predictor,) in m._predictors:
        n = predictor.nodes
        trees.append(
            {
                "feature": [int(v) for v in n["feature_idx"]],
                "threshold": [float(v) for v in n["num_threshold"]],
                "left": [int(v) for v in n["left"]],
                "right": [int(v) for v in n["right"]],
                "leaf": [int(v) for v in n["is_leaf"]],
                "value": [float(v) for v in n["value"]],
            }
        )
    baseline = float(np.ravel(m._baseline_prediction)[0])
    probe = x[:: max(1, len(x) // 2000)]
    exported = _scorer(baseline, trees).scores(probe)
    if not np.allclose(exported, m.decision_function(probe), atol=1e-6):
        raise RuntimeError("the exported trees do not reproduce scikit-learn's scores; report this as a bug")
    return baseline, trees


def _scorer(baseline: float, trees: list[dict[str, list[float]]]) -> UnitModel:
    """A unit model that only scores units (its gate is never read)."""
    w = len(GATE_WORDS)
    return UnitModel("check", "", [0.0] * (1 + w), 0.0, [0.0] * (1 + w), [1.0] * (1 + w), [0.0] * w, 0.0,
                     [0.0] * w, [1.0] * w, 0.5, baseline, trees)  # fmt: skip


def train_unit_model(
    stages: Any,
    pairs: Sequence[QAPair],
    *,
    name: str,
    holdout: float = 0.2,
    data: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[UnitModelReport, GateVerdict | None]:
    """Fit a unit model's trees on all but a `holdout` share of the questions, searched in `stages`' collection
    and packed as the config packs, and gate it on the rest at the config's compression target. Saves
    `<home>/unit_models/NAME/ragcli_unit_model.json` with the gate's verdict."""
    from ragcli.generation.build import build_compressor
    from ragcli.generation.sentence_compressor import SentenceCompressor
    from ragcli.pipelines.compress_step import block_similarity
    from ragcli.pipelines.query_pipeline import QueryOptions, new_recorder, prepare, retrieve
    from ragcli.train.deployment_gate import write_verdict
    from ragcli.trained_models import trained_dir

    t0 = time.perf_counter()
    cfg = stages.config
    comp_cfg = cfg.compression
    if comp_cfg.type != "sentences":
        raise InputError(
            f"the config's compression is {comp_cfg.type!r}; a unit model ranks the units of ragcli's sentence "
            "compressor: train it with the config that will use it (compression: {type: sentences, "
            "target_tokens: N})"
        )
    folder = trained_dir("unit_models", cfg.home_dir()) / check_name(name, "unit model")
    by_id = usable_pairs(pairs)
    usable = list(by_id.values())
    gate_from = comp_cfg.unit_model or BASE_GATE
    base = load_unit_model(gate_from, cfg.home_dir())

    def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        vectors: npt.NDArray[np.float32] = stages.embedder.embed(list(texts)).vectors
        return vectors

    # the compressor a new model would join (the config's, built before the new card is saved, which may replace
    # the one it names)
    current = build_compressor(cfg, stages.llm.count_tokens, embed, stages.embedder.model_name)
    if not isinstance(current, SentenceCompressor):
        raise InputError("the config's compression is not ragcli's sentence compressor")
    if progress:
        progress(f"searching and packing {len(usable)} labeled questions in collection {cfg.collection}")
    opts = QueryOptions(no_answer=True)
    packed: dict[str, tuple[str, list[float]]] = {}
    searched: dict[str, tuple[tuple[float, ...] | None, list[str]]] = {}  # query vector, packed chunk ids
    for p in usable:
        rec = new_recorder(stages, opts)
        found = retrieve(p.question, stages, opts, rec)
        context = prepare(p.question, found, stages, opts, rec).context
        scores = {h.chunk.id: h.score for h in found.hits}
        ids = [c.chunk_id for c in context.citations]
        packed[p.id] = (context.text, [scores.get(c, 0.0) for c in ids])
        searched[p.id] = (found.query_vector, ids)
    train_ids, held = split_queries(list(by_id), holdout) if holdout > 0 else (list(by_id), [])
    xs: list[npt.NDArray[np.float64]] = []
    ys: list[npt.NDArray[np.float64]] = []
    for q in train_ids:
        text, block_scores = packed[q]
        x, plain = current.unit_rows(by_id[q].question, text, block_scores)
        y = np.array(
            [answer_in_normalized(by_id[q].answers, normalize_answer(u)) for u in plain], dtype=float
        )
        if y.any():  # a question whose units hold no answer teaches nothing
            xs.append(x)
            ys.append(y)
    if not xs:
        raise InputError(
            "no unit of the packed sources holds any of the answers, so there is nothing to learn from; check "
            "that the collection holds the documents the questions are about"
        )
    x_all, y_all = np.vstack(xs), np.concatenate(ys)
    if progress:
        progress(f"fitting 150 trees on {len(y_all):,} units of {len(xs)} questions")
    baseline, trees = fit_trees(x_all, y_all)
    model = replace(
        base,
        name=name,
        baseline=baseline,
        trees=trees,
        card={
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "collection": cfg.collection,
            "questions": len(xs),
            "units": len(y_all),
            "positives": int(y_all.sum()),
            "gate_from": gate_from,
            "weights_sha": hashlib.sha256(json.dumps([baseline, trees]).encode()).hexdigest()[:16],
            **(data or {}),
        },
    )
    path = model.save(folder)
    report = UnitModelReport(
        name=name,
        path=str(folder),
        questions=len(xs),
        units=len(y_all),
        positives=int(y_all.sum()),
        trees=len(trees),
        gate_from=gate_from,
        seconds=round(time.perf_counter() - t0, 2),
    )
    if not held:
        return report, None
    target = CompressionTarget(ratio=comp_cfg.ratio, tokens=comp_cfg.target_tokens)
    if progress:
        progress(f"gate: compressing {len(held)} held-out questions with the new model and without it")
    learned = copy.copy(current)
    learned.unit_model = model
    # what `whole_source_tokens` reads, as the query path gives it: the held-out sources' cosine with the question
    similarity = (
        {q: block_similarity(stages, *searched[q]) for q in held} if current.whole_source_tokens else {}
    )

    def kept(comp: SentenceCompressor, q: str) -> float:
        text, block_scores = packed[q]
        done = comp.compress(
            by_id[q].question, text, target, block_scores=block_scores, block_similarity=similarity.get(q)
        )
        return float(answer_in_normalized(by_id[q].answers, normalize_answer(done.text)))

    verdict = paired_bootstrap(
        [kept(current, q) for q in held],
        [kept(learned, q) for q in held],
        baseline_name=f"unit_model: {comp_cfg.unit_model}"
        if comp_cfg.unit_model
        else "the compressor's weights",
        candidate_name=f"unit model {name}",
        metric="answer kept after compression",
    )
    write_verdict(path, verdict)
    return report, verdict
