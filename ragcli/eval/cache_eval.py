"""`ragcli eval cache`: a verifier's precision / hit-rate curve on labeled pairs, and a replay of a question log.

Pairs protocol (the cache holds `text_a`, a user asks `text_b`): precision = correct hits / hits; hit rate =
hits on label-1 pairs / label-1 pairs. The pairs are split by connected component into a calibration half
(the threshold is chosen there to meet the target's lower bound) and a held-out half (where precision and its
Wilson interval are reported at that threshold, and the curve is drawn).

Replay protocol: a log of questions, each with a `group` (questions of one group ask the same thing), is
asked in order through the real query pipeline with the cache on, over an empty scratch cache
(`scratch_answer_cache`: the user's cache is neither read nor written). What each answer did is read from the
trace the query path records (`replay_row`): a served entry is a `cache` stage, an LLM call an `llm` stage. A
hit is a call avoided; a hit whose cached question belongs to another group is a wrong answer served.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcli.errors import InputError
from ragcli.eval.cache_pairs import LabeledPair, split_pairs
from ragcli.generation.cache_calibration import (
    Calibration,
    CurvePoint,
    choose_threshold,
    measure_at,
    precision_curve,
)
from ragcli.generation.cache_protocols import PairVerifier

if TYPE_CHECKING:
    from ragcli.config import PipelineConfig
    from ragcli.generation.answer_cache import AnswerCache
    from ragcli.ingest.protocols import Embedder
    from ragcli.types import Answer


@dataclass
class PairsReport:
    """What `ragcli eval cache --pairs` prints."""

    verifier: str
    pairs: int
    calibration_pairs: int
    held_out_pairs: int
    target_precision: float
    confidence: float
    calibrated: Calibration
    held_out: CurvePoint
    """Precision (with interval) and hit rate of the calibrated threshold on the held-out half."""
    card_threshold: float | None
    card_held_out: CurvePoint | None
    """The same for the threshold stored in the verifier's card."""
    curve: list[CurvePoint]
    """On the held-out half."""
    seconds: float


def score_pairs(verifier: PairVerifier, pairs: Sequence[LabeledPair], batch: int = 512) -> np.ndarray:
    """The verifier's score for each pair (embedding each distinct text once)."""
    a = [p.text_a for p in pairs]
    b = [p.text_b for p in pairs]
    unique = list(dict.fromkeys([*a, *b]))
    vecs = np.concatenate([verifier.embed(unique[i : i + batch]) for i in range(0, len(unique), batch)])
    row = {t: i for i, t in enumerate(unique)}
    return verifier.score_vectors(a, b, vecs[[row[t] for t in a]], vecs[[row[t] for t in b]])


def evaluate_pairs(
    verifier: PairVerifier,
    pairs: Sequence[LabeledPair],
    *,
    name: str,
    target_precision: float = 0.95,
    confidence: float = 0.95,
    seed: int = 0,
    curve_points: int = 25,
) -> PairsReport:
    """Calibrate on half the pairs (by component), report on the other half."""
    t0 = time.perf_counter()
    calib, held = split_pairs(pairs, [0.5, 0.5], seed=seed)
    if not calib or not held:
        raise InputError(f"{len(pairs)} pairs are too few to split into calibration and held-out halves")
    s_cal = score_pairs(verifier, calib)
    s_held = score_pairs(verifier, held)
    y_cal = np.asarray([p.label for p in calib])
    y_held = np.asarray([p.label for p in held])
    cal = choose_threshold(s_cal, y_cal, target_precision=target_precision, confidence=confidence)
    card_t = verifier.threshold
    return PairsReport(
        verifier=name,
        pairs=len(pairs),
        calibration_pairs=len(calib),
        held_out_pairs=len(held),
        target_precision=target_precision,
        confidence=confidence,
        calibrated=cal,
        held_out=measure_at(s_held, y_held, cal.threshold, confidence=confidence),
        card_threshold=card_t if np.isfinite(card_t) else None,
        card_held_out=measure_at(s_held, y_held, card_t, confidence=confidence)
        if np.isfinite(card_t)
        else None,
        curve=precision_curve(s_held, y_held, confidence=confidence, points=curve_points),
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------- replay


@dataclass(frozen=True)
class LoggedQuestion:
    question: str
    group: str
    """Questions of one group ask the same thing (a hit across groups is a wrong answer)."""


def load_question_log(path: Path) -> list[LoggedQuestion]:
    """A JSONL log of `{"question": ..., "group": ...}` records (group optional: each question its own)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"question log {str(path)!r} does not exist; give a JSONL file of question, group")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append(LoggedQuestion(str(rec["question"]), str(rec.get("group", f"line{n}"))))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f'{path}:{n}: not a logged question ({exc}); each line must be {{"question": ..., "group": ...}}'
            ) from None
    return out


@dataclass
class ReplayReport:
    questions: int
    llm_calls: int
    calls_avoided: int
    exact_hits: int
    semantic_hits: int
    wrong_answers_served: int
    usd_spent: float
    usd_saved: float
    seconds: float
    wrong_examples: list[dict[str, str]] = field(default_factory=list)


AskFn = Callable[[str], dict[str, Any]]
"""Asks one question; returns `{"hit": tier or None, "cached_question": str, "usd": float, "saved_usd": float,
"llm_calls": int}`."""


def replay_row(ans: Answer) -> dict[str, Any]:
    """What one answer did, for `replay`, from the trace the query path records (`pipelines/cache_step.py`):
    a served entry is a `cache` stage with `hit`, `tier`, `cached_question` and `saved_usd`; each model call is an
    `llm` stage (one noted as `skipped`, or refused by the budget before it ran, is not a call)."""
    from ragcli.pipelines.cache_step import served_from_cache

    row: dict[str, Any] = {"hit": None, "cached_question": "", "saved_usd": 0.0, "llm_calls": 0}
    row["usd"] = float(ans.usage.usd or 0.0)
    served = served_from_cache(ans.trace)
    if served is not None:
        row.update(
            hit=served["tier"],
            cached_question=served["cached_question"],
            saved_usd=served["saved_usd"] or 0.0,
        )
    row["llm_calls"] = sum(
        1 for t in ans.trace if t.stage == "llm" and not t.detail.get("skipped") and "refused" not in t.detail
    )
    return row


def scratch_answer_cache(cfg: PipelineConfig, embedder: Embedder, folder: Path) -> AnswerCache:
    """An empty answer cache under `folder`, with the tiers of `cfg.cache` (its verifier or cosine threshold,
    TTL, candidates) but nothing shared with the user's cache: SQLite metadata and a local Qdrant collection
    there, whatever the config's store and state are. A replay runs over it so that it starts cold and leaves
    the user's cache as it was."""
    from ragcli.generation.answer_cache import AnswerCache
    from ragcli.generation.cache_build import load_verifier
    from ragcli.generation.sqlite_cache_store import SqliteCacheStore
    from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore

    c = cfg.cache
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    verifier = load_verifier(cfg, embedder) if c.semantic == "verifier" else None
    meta = SqliteCacheStore(folder / "answer_cache.sqlite")
    try:
        index = QdrantEdgeStore(folder / "qdrant" / c.collection, c.collection)
        return AnswerCache(
            meta,
            index,
            embedder,
            verifier=verifier,
            cosine_threshold=c.cosine_threshold if c.semantic == "cosine" else None,
            ttl_s=c.ttl_s,
            candidates=c.candidates,
        )
    except BaseException:
        meta.close()
        raise


def replay(log: Sequence[LoggedQuestion], ask: AskFn) -> ReplayReport:
    """Ask every logged question in order; count calls avoided and wrong answers served."""
    t0 = time.perf_counter()
    group_of: dict[str, str] = {}
    rep = ReplayReport(len(log), 0, 0, 0, 0, 0, 0.0, 0.0, 0.0)
    for item in log:
        group_of.setdefault(item.question.strip(), item.group)  # the pipeline caches the stripped question
        r = ask(item.question)
        rep.llm_calls += int(r.get("llm_calls", 0))
        rep.usd_spent += float(r.get("usd") or 0.0)
        tier = r.get("hit")
        if tier:
            rep.calls_avoided += 1
            rep.usd_saved += float(r.get("saved_usd") or 0.0)
            rep.exact_hits += tier == "exact"
            rep.semantic_hits += tier == "semantic"
            cached = str(r.get("cached_question", ""))
            if group_of.get(cached.strip(), item.group) != item.group:
                rep.wrong_answers_served += 1
                if len(rep.wrong_examples) < 10:
                    rep.wrong_examples.append({"asked": item.question, "served_for": cached})
    rep.seconds = time.perf_counter() - t0
    return rep


__all__ = [
    "LoggedQuestion",
    "PairsReport",
    "ReplayReport",
    "evaluate_pairs",
    "load_question_log",
    "replay",
    "replay_row",
    "score_pairs",
    "scratch_answer_cache",
]
