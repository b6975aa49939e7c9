"""`ragcli train fusion`: learn how to weigh the dense and BM25 scores of hybrid search from labeled queries.

The labeled queries are searched in the index the fusion will serve (a collection holding the judged documents:
`ragcli train fusion --corpus` builds or reuses it, as `ragcli eval retrieval` does), dense and BM25 apart as
the query path runs them, so training sees the scores the model meets at query time. For each training query,
RRF's top `depth` candidates become rows of `ragcli.retrieval.fusion.FEATURES` labeled relevant or not, and an
L2-regularised logistic regression is fitted on them (standardised features, Newton steps: a second on thousands
of rows, no model to download). The held-out queries then gate it: the fused ranking against the ranking the
config has now (the store's RRF, or the fusion it names), paired bootstrap on nDCG@10.

Chosen by measurement on SciFact's train queries (`benchmarks/retrieval_fusion_cv.py`, 5-fold cross-validation,
never on the gate or test queries): per-query gap and z-score features carry the gain (raw scores alone +0.004
nDCG@10, with them +0.032); a listwise softmax loss, late-interaction, cross-encoder or fine-tuned-embedder scores,
and depths 10 or 40 did no better. With `sentences` the rows also hold `SENTENCE_FEATURES` (the question's cosine
with each candidate's best sentence and first line), which lift the same CV from +0.029 to +0.046: the
candidates' sentences are embedded once here (kept in `<home>/sentence_vectors.sqlite` for query time).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ragcli.config import PipelineConfig
from ragcli.errors import InputError
from ragcli.retrieval.fusion import (
    CARD,
    FEATURES,
    SENTENCE_FEATURES,
    LearnedFusion,
    Ranked,
    SentenceScores,
    candidate_features,
    rrf,
)
from ragcli.train.deployment_gate import GateVerdict, paired_bootstrap, per_query_ndcg
from ragcli.train.gate_eval import split_queries
from ragcli.trained_models import check_name

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FusionReport:
    """What `train_fusion` did: where the model is, on how much data, and its weights per feature."""

    name: str
    path: str
    queries: int
    candidates: int
    positives: int
    seconds: float
    weights: dict[str, float]
    cut: dict[str, Any] | None = None
    """On the held-out queries, what the config's packing cut keeps from each ranking (see `cut_effect`)."""


def fit_logistic(
    x: Any, y: Any, *, l2: float = 1.0, iters: int = 30, balanced: bool = False
) -> tuple[Any, Any, Any, float]:
    """(mean, scale, weights, bias) of an L2-regularised logistic regression on standardised features.

    `balanced` weighs each class's rows so that both classes count alike (rare positives)."""
    import numpy as np

    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    ridge = l2 * np.eye(len(w))
    ridge[-1, -1] = 0.0  # the bias is not shrunk
    sw = np.ones(len(y))
    if balanced:
        pos = float(np.sum(y))
        if 0 < pos < len(y):
            sw = np.where(y > 0, len(y) / (2 * pos), len(y) / (2 * (len(y) - pos)))
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -40.0, 40.0)))
        grad = z.T @ (sw * (p - y)) + ridge @ w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + ridge + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return mean, scale, w[:-1], float(w[-1])


def logistic_fields(x: Any, y: Any, *, l2: float = 1.0, balanced: bool = False) -> dict[str, Any]:
    """`fit_logistic` as a model card's fields: `weights`, `bias`, `mean`, `scale` (plain floats)."""
    mean, scale, w, b = fit_logistic(x, y, l2=l2, balanced=balanced)
    return {
        "weights": [float(v) for v in w],
        "bias": float(b),
        "mean": [float(v) for v in mean],
        "scale": [float(v) for v in scale],
    }


def training_rows(
    dense: Sequence[Ranked],
    sparse: Sequence[Ranked],
    relevant: Sequence[Mapping[str, int]],
    *,
    depth: int,
    rrf_k: int,
    prefetch: int,
    sentence_scores: Sequence[SentenceScores] | None = None,
) -> tuple[Any, Any]:
    """Feature rows of every query's RRF top `depth` and their labels (1 = judged relevant).

    `sentence_scores`, one per query, adds the `SENTENCE_FEATURES` (a fusion trained with sentences)."""
    import numpy as np

    xs, ys = [], []
    scorers = sentence_scores if sentence_scores is not None else [None] * len(dense)
    for d, s, rel, scorer in zip(dense, sparse, relevant, scorers, strict=True):
        head = [doc for doc, _ in rrf([d, s], k=rrf_k, limit=depth)]
        if not head:
            continue
        sentences = scorer(head) if scorer is not None else None
        xs.append(candidate_features(d, s, head, rrf_k=rrf_k, prefetch=prefetch, sentences=sentences))
        ys += [1.0 if rel.get(doc, 0) > 0 else 0.0 for doc in head]
    if not xs:
        width = len(FEATURES) + (len(SENTENCE_FEATURES) if sentence_scores is not None else 0)
        return np.zeros((0, width)), np.zeros(0)
    return np.vstack(xs), np.asarray(ys)


def fit_fusion(
    name: str, x: Any, y: Any, *, depth: int = 20, rrf_k: int = 60, prefetch: int = 100, l2: float = 1.0
) -> LearnedFusion:
    """A `LearnedFusion` fitted on `training_rows` made with the same depth, k and prefetch.

    Raises:
        InputError: no candidate is judged relevant, or every one is.
    """
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise InputError(
            f"{len(y)} training candidates, {positives} of them relevant: a fusion needs both relevant and other "
            "documents in hybrid's top candidates; label more queries or check that the qrels' document ids are "
            "the corpus's"
        )
    sentences = x.shape[1] > len(FEATURES)
    return LearnedFusion(
        name=name,
        **logistic_fields(x, y, l2=l2),
        depth=depth,
        prefetch=prefetch,
        rrf_k=rrf_k,
        features=[*FEATURES, *SENTENCE_FEATURES] if sentences else list(FEATURES),
    )


def gate_fusion(
    model: LearnedFusion,
    dense: Sequence[Ranked],
    sparse: Sequence[Ranked],
    qrels: Sequence[Mapping[str, int]],
    baseline: Sequence[Ranked],
    baseline_name: str = "hybrid",
    doc_of: Mapping[str, str] | None = None,
    condensed: bool = False,
    sentence_scores: Sequence[SentenceScores | None] | None = None,
) -> GateVerdict:
    """The fused ranking against `baseline` (the config's RRF) on held-out queries, paired bootstrap on nDCG@10.

    `doc_of` maps the rankings' ids (chunks) to the documents `qrels` judges; without it they are the same.
    `condensed`: judgments are incomplete (feedback judged only the sources an answer showed), so each ranking is
    scored with its unjudged ids removed (condensed lists), not with them counted as irrelevant, which would
    favour the ranking that chose what was shown. `sentence_scores` (one per query) serve a model that reads
    sentence features.
    """
    ids = [str(i) for i in range(len(qrels))]
    sub = {i: dict(r) for i, r in zip(ids, qrels, strict=True)}

    def docs(ranked: Ranked) -> list[str]:
        return [doc_of.get(c, c) if doc_of else c for c, _ in ranked]

    def judged(i: str, ranked: list[str]) -> list[str]:
        return [d for d in ranked if d in sub[i]] if condensed else ranked

    base_run = {i: judged(i, docs(r)) for i, r in zip(ids, baseline, strict=True)}
    scorers = sentence_scores if sentence_scores is not None else [None] * len(dense)
    new_run = {
        i: judged(i, docs(model.fuse(d, s, 100, sc)))
        for i, d, s, sc in zip(ids, dense, sparse, scorers, strict=True)
    }
    return paired_bootstrap(
        per_query_ndcg(base_run, sub),
        per_query_ndcg(new_run, sub),
        baseline_name=baseline_name,
        candidate_name="hybrid, trained fusion",
    )


def cut_effect(
    rankings: Sequence[Ranked], qrels: Sequence[Mapping[str, int]], *, top_k: int, cut: float | None
) -> dict[str, float]:
    """What a packer keeping the top `top_k` hits whose score is at least `cut` x the best one would keep: hits
    per query, and the share of the judged-relevant ids among them (the nDCG gate does not see this, yet it is
    what a fusion changes in the prompt: its probabilities make the cut sharper or looser)."""
    kept_total = found = relevant = 0
    for ranked, rel in zip(rankings, qrels, strict=True):
        top = ranked[:top_k]
        if cut and top and top[0][1] > 0:
            top = [(c, sc) for c, sc in top if sc >= cut * top[0][1]]
        kept_total += len(top)
        positives = {c for c, g in rel.items() if g > 0}
        relevant += len(positives)
        found += len(positives & {c for c, _ in top})
    n = max(len(rankings), 1)
    return {"hits_kept": kept_total / n, "recall": found / relevant if relevant else 0.0}


@dataclass(frozen=True)
class Searched:
    """Every labeled query through the store (see `store_rankings`)."""

    dense: dict[str, Ranked]
    sparse: dict[str, Ranked]
    hybrid: dict[str, Ranked]
    doc_of: dict[str, str]
    """Each chunk's document id."""
    text_of: dict[str, str]
    """Each chunk's text (what sentence features read)."""
    vectors: dict[str, list[float]]
    """Each query's vector."""


def store_rankings(
    stages: Any, queries: Mapping[str, str], *, prefetch: int, progress: Progress | None = None
) -> Searched:
    """Every query through the store as the query path runs it: its dense and its BM25 search (top `prefetch`
    each, chunk ids and scores), the store's own hybrid (RRF) ranking, and each chunk's document id and text.

    Training on the index the fusion will serve keeps its features the ones it meets at query time.
    """
    from ragcli.retrieval.filter_parser import parse_where
    from ragcli.retrieval.filters import all_of
    from ragcli.retrieval.protocols import SearchRequest

    cfg = stages.config
    flt = all_of(stages.tenant_filter, parse_where(cfg.retrieval.where, cfg.filterable))
    encoder = stages.sparse_encoder
    if encoder is None:
        raise InputError("a fusion needs BM25 vectors in the index: set ingest.sparse: true and re-ingest")
    out = Searched({}, {}, {}, {}, {}, {})
    for n, (q, text) in enumerate(queries.items(), 1):
        vec = stages.embedder.embed_query(text).vectors[0].tolist()
        sv = encoder.encode_query(text)
        found = (
            stages.store.search(SearchRequest(dense=vec, mode="dense", limit=prefetch, filter=flt)),
            stages.store.search(SearchRequest(sparse=sv, mode="sparse", limit=prefetch, filter=flt)),
            stages.store.search(
                SearchRequest(
                    dense=vec,
                    sparse=sv,
                    mode="hybrid",
                    limit=100,
                    filter=flt,
                    prefetch_limit=cfg.retrieval.prefetch,
                    rrf_k=cfg.retrieval.rrf_k,
                )
            ),
        )
        for hits in found:
            out.doc_of.update((h.chunk.id, h.chunk.doc_id) for h in hits)
            out.text_of.update((h.chunk.id, h.chunk.text) for h in hits)
        out.dense[q], out.sparse[q], out.hybrid[q] = ([(h.chunk.id, h.score) for h in hits] for hits in found)
        out.vectors[q] = vec
        if progress is not None and n % 200 == 0:
            progress(f"searched {n}/{len(queries)} queries")
    return out


def sentence_scorers(
    stages: Any, searched: Searched, qids: Sequence[str], *, depth: int, rrf_k: int, progress: Progress | None
) -> dict[str, SentenceScores]:
    """Per query, its candidates' sentence cosines; every candidate's sentences embedded first, in batches."""
    vectors = stages.sentence_vectors
    heads = {
        q: [c for c, _ in rrf([searched.dense[q], searched.sparse[q]], k=rrf_k, limit=depth)] for q in qids
    }
    chunks = sorted({c for head in heads.values() for c in head})
    vectors.memory = max(vectors.memory, len(chunks) + 1)  # training reads each one many times
    t0 = time.perf_counter()
    for start in range(0, len(chunks), 256):
        vectors.matrices([searched.text_of[c] for c in chunks[start : start + 256]])
        if progress is not None and (start // 256) % 8 == 0:
            progress(
                f"sentence vectors: {min(start + 256, len(chunks))}/{len(chunks)} candidate chunks "
                f"({vectors.embedded} sentences embedded, {time.perf_counter() - t0:.0f} s)"
            )

    def scorer(q: str) -> SentenceScores:
        return lambda ids: vectors.scores(searched.vectors[q], [searched.text_of[c] for c in ids])

    return {q: scorer(q) for q in qids}


def train_fusion(
    stages: Any,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    name: str,
    holdout: float = 0.2,
    depth: int = 20,
    prefetch: int = 100,
    data: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    by_chunk: bool = False,
    sentences: bool = False,
) -> tuple[FusionReport, GateVerdict | None]:
    """Fit the fusion on all but a `holdout` share of the labeled queries, searched in `stages`' index (a
    collection holding the judged documents, `doc_id` = the qrels' ids), and gate it on the rest.

    With `by_chunk` the qrels judge chunk ids (feedback on an answer's sources, in the user's own collection)
    rather than documents, and only some of them: the gate then scores condensed rankings (unjudged chunks left
    out). With `sentences` the model also reads `SENTENCE_FEATURES` (the candidates' sentences are embedded).

    Saves `<home>/fusions/NAME/ragcli_fusion.json` (weights and card, the gate's verdict included).
    """
    from ragcli.train.deployment_gate import write_verdict
    from ragcli.trained_models import trained_dir

    t0 = time.perf_counter()
    cfg: PipelineConfig = stages.config
    if cfg.retrieval.mode != "hybrid":
        raise InputError(
            f"retrieval.mode is {cfg.retrieval.mode!r}; a fusion re-weighs hybrid search's dense and BM25 "
            "scores: train it with a config whose retrieval.mode is hybrid"
        )
    # the ranking a new fusion would replace: the config's own fusion when it names one (read before the new
    # model is saved, which may replace it under the same name), else the store's RRF
    current = stages.fusion
    qids = [q for q in qrels if q in queries]
    if progress:
        progress(f"searching {len(qids)} labeled queries (dense and BM25 apart, and hybrid as it is)")
    searched = store_rankings(stages, {q: queries[q] for q in qids}, prefetch=prefetch, progress=progress)
    dense, sparse, hybrid, doc_of = searched.dense, searched.sparse, searched.hybrid, searched.doc_of
    rrf_k = cfg.retrieval.rrf_k
    scorers: dict[str, SentenceScores] = {}
    if sentences or (current is not None and current.uses_sentences):
        scorers = sentence_scorers(stages, searched, qids, depth=depth, rrf_k=rrf_k, progress=progress)
    if by_chunk:
        doc_of = {c: c for c in doc_of}

    def chunk_labels(q: str) -> dict[str, int]:
        return {c: qrels[q].get(doc_of[c], 0) for c, _ in (*dense[q], *sparse[q])}

    train_ids, held = split_queries(qids, holdout) if holdout > 0 else (list(qids), [])
    x, y = training_rows(
        [dense[q] for q in train_ids],
        [sparse[q] for q in train_ids],
        [chunk_labels(q) for q in train_ids],
        depth=depth,
        rrf_k=rrf_k,
        prefetch=prefetch,
        sentence_scores=[scorers[q] for q in train_ids] if sentences else None,
    )
    model = fit_fusion(name, x, y, depth=depth, rrf_k=rrf_k, prefetch=prefetch)
    # on the held-out queries: today's ranking and the judgments, for the cut report and the gate
    today = [current.fuse(dense[q], sparse[q], 100, scorers.get(q)) if current else hybrid[q] for q in held]
    judged = [qrels[q] for q in held]
    cut = None
    if held:  # the config's cut over each ranking's own scores, on ids the qrels judge (documents or chunks)

        def as_judged(ranked: Ranked) -> Ranked:
            seen: dict[str, float] = {}
            for c, sc in ranked:
                seen.setdefault(doc_of.get(c, c), sc)
            return list(seen.items())

        k, rel_cut = cfg.retrieval.top_k, cfg.packing.min_relative_score
        cut = {
            "top_k": k,
            "min_relative_score": rel_cut,
            "today": cut_effect([as_judged(r) for r in today], judged, top_k=k, cut=rel_cut),
            "trained": cut_effect(
                [as_judged(model.fuse(dense[q], sparse[q], 100, scorers.get(q))) for q in held],
                judged,
                top_k=k,
                cut=rel_cut,
            ),
        }
    model.card = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "weights_sha": hashlib.sha1(repr((model.weights, model.bias)).encode()).hexdigest()[:12],
        "embedder": cfg.embedder.model_dump(mode="json"),
        "collection": cfg.collection,
        "data": {**(data or {}), "train_queries": len(train_ids), "held_out_queries": len(held)},
        **({"cut": cut} if cut else {}),
    }
    path = model.save(trained_dir("fusions", cfg.home_dir()) / check_name(name, "fusion"))
    verdict = None
    if held:
        if progress:
            progress(f"gate: {len(held)} held-out queries, the current ranking against the trained fusion")
        verdict = gate_fusion(
            model,
            [dense[q] for q in held],
            [sparse[q] for q in held],
            judged,
            today,
            baseline_name=f"hybrid, fusion {cfg.retrieval.fusion}" if current else "hybrid",
            doc_of=doc_of,
            condensed=by_chunk,
            sentence_scores=[scorers.get(q) for q in held],
        )
        write_verdict(path, verdict)
    report = FusionReport(
        name=name,
        path=str(path.parent),
        queries=len(train_ids),
        candidates=len(y),
        positives=int(y.sum()),
        seconds=round(time.perf_counter() - t0, 2),
        weights=dict(zip(model.features, model.weights, strict=True)),
        cut=cut,
    )
    return report, verdict


__all__ = [
    "CARD",
    "FusionReport",
    "Searched",
    "cut_effect",
    "fit_fusion",
    "fit_logistic",
    "gate_fusion",
    "sentence_scorers",
    "store_rankings",
    "train_fusion",
    "training_rows",
]
