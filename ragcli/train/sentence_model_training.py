"""`ragcli train sentence-model`: learn which retrieved sentences hold the answer, from questions with answers.

Each labeled question is searched in the config's collection by the real query path (`retrieve`); the config's
packer lists every sentence it would weigh for those hits with the features of
`ragcli.generation.sentence_model.FEATURES`, and a sentence is labeled 1 when it holds one of the question's
answers (normalised text containment, as `ragcli eval qa` scores answer-in-context). A class-balanced,
L2-regularised logistic regression is fitted on the rows of all but a held-out share of the questions; the rest
gate it: the packed context with the model against the config's packing as it is, paired bootstrap on
answer-in-context per question. Yes/no answers and questions whose retrieved sentences hold no answer teach
nothing and are left out of training (the gate keeps every held-out question with an answer).

Chosen by measurement (`benchmarks/sentence_model_train.py`, cross-validation on the tune halves of HotpotQA and
NQ): pointwise labels, interleaving with the lexical ranking, L2 10 (sklearn's C 0.1) and a floor of +0.5.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragcli.errors import InputError
from ragcli.eval.normalize import answer_in_normalized, is_yes_no, normalize_answer
from ragcli.generation.sentence_model import FEATURES, SentenceModel
from ragcli.generation.token_budget_packer import TokenBudgetPacker
from ragcli.jsonl import read_objects
from ragcli.train.deployment_gate import GateVerdict, paired_bootstrap
from ragcli.train.gate_eval import split_queries
from ragcli.trained_models import check_name
from ragcli.types import Hit

Progress = Callable[[str], None]
Labeled = tuple[list[list[float]], list[int]]
"""One question's feature rows and labels (1 = the sentence holds an answer)."""

DEFAULT_L2 = 10.0
DEFAULT_FLOOR = 0.5


@dataclass(frozen=True)
class QAPair:
    """A labeled question: its text and the answers that count as found."""

    id: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class SentenceModelReport:
    """What `train_sentence_model` did: where the card is, on how much data, and its weights per feature."""

    name: str
    path: str
    questions: int
    sentences: int
    positives: int
    seconds: float
    weights: dict[str, float]


def read_qa_pairs(path: Path) -> list[QAPair]:
    """Questions with answers from a JSONL file: `question` and `answers` (a list) or `answer` (a string);
    `id` optional. Bad lines raise an error naming the line."""
    pairs: list[QAPair] = []
    for n, row in read_objects(path, "questions file", "a {question, answers} object per line"):
        question = row.get("question")
        answers = row.get("answers", row.get("answer"))
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{path}:{n}: 'question' must be a non-empty string")
        if (
            not isinstance(answers, list)
            or not answers
            or not all(isinstance(a, str) and a.strip() for a in answers)
        ):
            raise InputError(
                f"{path}:{n}: 'answers' must be a non-empty list of strings (or 'answer' a string)"
            )
        pairs.append(QAPair(str(row.get("id", n)), question.strip(), tuple(a.strip() for a in answers)))
    if not pairs:
        raise InputError(f"{str(path)!r} holds no questions")
    return pairs


def usable_pairs(pairs: Sequence[QAPair]) -> dict[str, QAPair]:
    """The pairs a model can learn from, by id: yes/no answers left out (no passage text holds them); at least
    two, and ids unique."""
    usable = [p for p in pairs if not is_yes_no(p.answers)]
    if len(usable) < 2:
        raise InputError(f"{len(usable)} questions with a non-yes/no answer; label more questions")
    by_id = {p.id: p for p in usable}
    if len(by_id) != len(usable):
        raise InputError("question ids repeat; give each line a unique 'id' (or leave ids out)")
    return by_id


def labeled_rows(
    packer: TokenBudgetPacker, question: str, hits: Sequence[Hit], answers: Sequence[str]
) -> Labeled:
    """The packer's sentences for these hits as feature rows, labeled by whether they hold an answer."""
    rows = packer.sentence_rows(question, hits)
    labels = [int(answer_in_normalized(answers, normalize_answer(text))) for text, _ in rows]
    return [r for _, r in rows], labels


def fit_sentence_model(
    questions: Sequence[Labeled], name: str, *, l2: float = DEFAULT_L2, floor: float | None = DEFAULT_FLOOR
) -> SentenceModel:
    """A class-balanced logistic regression on the rows of the questions that have a positive sentence."""
    import numpy as np

    from ragcli.train.fusion_training import logistic_fields

    useful = [(rows, labels) for rows, labels in questions if any(labels)]
    if not useful:
        raise InputError(
            "no retrieved sentence holds any of the answers, so there is nothing to learn from; check that the "
            "collection holds the documents the questions are about"
        )
    x = np.asarray([r for rows, _ in useful for r in rows], dtype=np.float64)
    y = np.asarray([v for _, labels in useful for v in labels], dtype=np.float64)
    return SentenceModel(
        name=name,
        **logistic_fields(x, y, l2=l2, balanced=True),
        floor=floor,
        card={"questions": len(useful), "sentences": len(y), "positives": int(y.sum()), "l2": l2},
    )


def answer_kept(
    packer: TokenBudgetPacker, question: str, hits: Sequence[Hit], answers: Sequence[str], budget: int
) -> float:
    """1.0 when the packed context holds one of the answers, else 0.0."""
    ctx = packer.pack(question, hits, budget)
    return float(answer_in_normalized(answers, normalize_answer(ctx.text)))


def train_sentence_model(
    stages: Any,
    pairs: Sequence[QAPair],
    *,
    name: str,
    holdout: float = 0.2,
    budget: int | None = None,
    l2: float = DEFAULT_L2,
    floor: float | None = DEFAULT_FLOOR,
    data: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[SentenceModelReport, GateVerdict | None]:
    """Fit a sentence model on all but a `holdout` share of the questions, searched in `stages`' collection,
    and gate it on the rest at the packing budget (`budget`, else the config's). Saves
    `<home>/sentence_models/NAME/ragcli_sentence_model.json` with the gate's verdict."""
    from ragcli.generation.build import build_packer
    from ragcli.pipelines.query_pipeline import QueryOptions, new_recorder, retrieve
    from ragcli.train.deployment_gate import write_verdict
    from ragcli.trained_models import trained_dir

    t0 = time.perf_counter()
    cfg = stages.config
    if not cfg.packing.select_sentences:
        raise InputError(
            "the config packs whole chunks (packing.select_sentences is false); a sentence model ranks sentences: "
            "train it with a config that selects sentences, e.g. -c lean"
        )
    by_id = usable_pairs(pairs)
    usable = list(by_id.values())
    budget = budget or cfg.packing.budget_tokens or 256
    if progress:
        progress(f"searching {len(usable)} labeled questions in collection {cfg.collection}")
    opts = QueryOptions(no_answer=True)
    hits = {p.id: retrieve(p.question, stages, opts, new_recorder(stages, opts)).hits for p in usable}
    train_ids, held = split_queries(list(by_id), holdout) if holdout > 0 else (list(by_id), [])
    # the packing a new model would replace (the config's, read before the new card is saved, which may replace
    # the one it names), and the same packing without a model, whose sentence lists the model learns from
    current = _token_packer(build_packer(cfg, stages.llm))
    lexical = _with_model(current, None)
    top_k = cfg.retrieval.top_k
    rows = [labeled_rows(lexical, by_id[q].question, hits[q][:top_k], by_id[q].answers) for q in train_ids]
    model = fit_sentence_model(rows, name, l2=l2, floor=floor)
    folder = trained_dir("sentence_models", cfg.home_dir()) / check_name(name, "sentence model")
    model.card.update(
        {
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "collection": cfg.collection,
            "budget": budget,
            "weights_sha": hashlib.sha256(json.dumps(model.weights).encode()).hexdigest()[:16],
            **(data or {}),
        }
    )
    path = model.save(folder)
    report = SentenceModelReport(
        name=name,
        path=str(folder),
        questions=int(model.card["questions"]),
        sentences=int(model.card["sentences"]),
        positives=int(model.card["positives"]),
        seconds=round(time.perf_counter() - t0, 2),
        weights=dict(zip(FEATURES, model.weights, strict=True)),
    )
    if not held:
        return report, None
    if progress:
        progress(
            f"gate: packing {len(held)} held-out questions at {budget} tokens, with the new model and with "
            "the config's packing"
        )
    learned = _with_model(lexical, model)
    base = [answer_kept(current, by_id[q].question, hits[q][:top_k], by_id[q].answers, budget) for q in held]
    cand = [answer_kept(learned, by_id[q].question, hits[q][:top_k], by_id[q].answers, budget) for q in held]
    verdict = paired_bootstrap(
        base,
        cand,
        baseline_name=f"sentence_model: {cfg.packing.sentence_model}"
        if cfg.packing.sentence_model
        else "lexical",
        candidate_name=f"sentence model {name}",
        metric="answer in context",
    )
    write_verdict(path, verdict)
    return report, verdict


def _token_packer(packer: Any) -> TokenBudgetPacker:
    if not isinstance(packer, TokenBudgetPacker):
        raise InputError(
            f"a sentence model needs ragcli's token-budget packer, the config builds {type(packer).__name__}"
        )
    return packer


def _with_model(packer: TokenBudgetPacker, model: SentenceModel | None) -> TokenBudgetPacker:
    """The same packer with another sentence model (or none)."""
    import copy

    out = copy.copy(packer)
    out.model = model
    return out
