"""Train a router for N tiers on outcome labels: per tier, P(answer good) from the packaged encoder's embedding
and cheap features; the model is picked by cross-validation, and the whole saved as `<home>/routers/NAME/` (card +
numpy weights).

Calibration is cross-fitted by default: the picked model is fitted on every label, and its threshold is read from
the out-of-fold predictions of the same cross-validation that picked it, so no label is spent on calibration
alone (`calibration="holdout"` keeps the older split: fit on 75 %, calibrate on the other 25 %).

Candidates: the per-subject prior, logistic regression (embedding + features, or features alone), a small MLP,
kNN on the embedding, and blends of them. Gradient boosting is measured when scikit-learn has it, but a saved
router holds only models it can run in numpy, so it is reported and not picked.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragcli.errors import InputError, ResourceMissing
from ragcli.eval.routing_metrics import gain_curve
from ragcli.generation.learned_router import (
    CARD,
    WEIGHTS,
    Rule,
    deficits,
    routers_dir,
    threshold_for_quality,
    threshold_for_share,
)
from ragcli.generation.lm_vectors import (
    LM_FEW_LABELS,
    LM_SCALES,
    LMFeatures,
    LMSpec,
    LMVectorizer,
    PromptVectorizer,
)
from ragcli.generation.router_features import CHEAP_NAMES, RouterFeatures
from ragcli.generation.router_models import (
    BlendModel,
    KnnModel,
    LogisticModel,
    MLPModel,
    PriorModel,
    TierModel,
)
from ragcli.train.router_outcomes import Outcomes, split_indices
from ragcli.trained_models import check_name

if TYPE_CHECKING:
    from ragcli.ingest.protocols import Embedder

log = logging.getLogger(__name__)

FloatMatrix = npt.NDArray[np.float32]


@dataclass
class Data:
    """Everything a candidate model is fitted on or scored on."""

    emb: FloatMatrix
    dense: FloatMatrix
    labels: npt.NDArray[np.float64]
    benchmarks: list[str]


def _sklearn() -> Any:
    try:
        import sklearn
    except ImportError as exc:
        raise ResourceMissing(
            "training a router needs scikit-learn; run `pip install 'ragcli[train]'`"
        ) from exc
    return sklearn


def _cached(
    kind: str, model: str, prompts: Sequence[str], compute: Callable[[], Any], cache: Path | None
) -> FloatMatrix:
    """`compute()`'s matrix, kept in `cache` under a key of the model and the prompts (computing is the slow part)."""
    key = hashlib.sha256(("\x00".join([model, *prompts])).encode()).hexdigest()[:24]
    path = cache / f"router-{kind}-{key}.npy" if cache else None
    if path is not None and path.is_file():
        cached: FloatMatrix = np.load(path).astype(np.float32)
        return cached
    vectors = np.asarray(compute(), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def embed_prompts(prompts: Sequence[str], embedder: Embedder, cache: Path | None = None) -> FloatMatrix:
    """Embed prompts, reusing a cached matrix for the same embedder and prompts."""
    return _cached("emb", embedder.model_name, prompts, lambda: embedder.embed(list(prompts)).vectors, cache)


def lm_prompt_vectors(
    prompts: Sequence[str], vectorizer: PromptVectorizer, cache: Path | None = None
) -> FloatMatrix:
    """The LM view's raw vectors of prompts, reusing a cached matrix for the same view and prompts."""
    return _cached("lm", vectorizer.name, prompts, lambda: vectorizer.vectors(prompts), cache)


def _filled(labels: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Labels with untried tiers set to the tier's mean (kNN and the prior average them)."""
    means = np.nanmean(labels, axis=0)
    return np.where(np.isnan(labels), means, labels).astype(np.float32)


def fit_logreg(d: Data, c: float, dense_only: bool = False) -> LogisticModel:
    from sklearn.linear_model import LogisticRegression

    x = d.dense if dense_only else np.hstack([d.emb, d.dense])
    coef = np.zeros((d.emb.shape[1] + d.dense.shape[1], d.labels.shape[1]), dtype=np.float32)
    intercept = np.zeros(d.labels.shape[1], dtype=np.float32)
    for t in range(d.labels.shape[1]):
        keep = ~np.isnan(d.labels[:, t])
        y = (d.labels[keep, t] >= 0.5).astype(int)
        if y.min() == y.max():  # one class only: a constant model
            intercept[t] = 8.0 if y[0] else -8.0
            continue
        lr = LogisticRegression(C=c, max_iter=2000).fit(x[keep], y)
        w = lr.coef_[0].astype(np.float32)
        if dense_only:
            coef[d.emb.shape[1] :, t] = w
        else:
            coef[:, t] = w
        intercept[t] = float(lr.intercept_[0])
    return LogisticModel(coef, intercept)


def fit_mlp(d: Data, hidden: int = 64, alpha: float = 1e-2, seed: int = 0) -> MLPModel:
    from sklearn.neural_network import MLPClassifier

    x = np.hstack([d.emb, d.dense])
    y = (_filled(d.labels) >= 0.5).astype(int)
    mlp = MLPClassifier(
        hidden_layer_sizes=(hidden,), alpha=alpha, early_stopping=True, max_iter=300, random_state=seed
    ).fit(x, y)
    weights = [w.astype(np.float32) for w in mlp.coefs_]
    biases = [b.astype(np.float32) for b in mlp.intercepts_]
    return MLPModel(weights, biases)


def fit_knn(d: Data, k: int, shrink: float = 5.0) -> KnnModel:
    return KnnModel(d.emb.astype(np.float32), _filled(d.labels), k=k, shrink=shrink)


def fit_prior(d: Data, features: RouterFeatures, smoothing: float = 10.0) -> PriorModel:
    start = len(CHEAP_NAMES)
    onehot = d.dense[:, start:].astype(np.float64)
    labels = _filled(d.labels).astype(np.float64)
    overall = labels.mean(axis=0)
    counts = onehot.sum(axis=0)[:, None]
    sums = onehot.T @ labels
    table = (sums + smoothing * overall) / (counts + smoothing)
    return PriorModel(table.astype(np.float32), overall.astype(np.float32), start, len(features.subjects))


def candidates(features: RouterFeatures) -> dict[str, Callable[[Data], TierModel]]:
    """The models tried, by name."""

    def blend(d: Data) -> TierModel:
        return BlendModel([fit_logreg(d, 0.5), fit_knn(d, 50), fit_prior(d, features)], [1.0, 1.0, 1.0])

    def blend_mlp(d: Data) -> TierModel:
        return BlendModel([fit_mlp(d), fit_knn(d, 50), fit_prior(d, features)], [1.0, 1.0, 1.0])

    return {
        "prior": lambda d: fit_prior(d, features),
        "logreg_features": lambda d: fit_logreg(d, 1.0, dense_only=True),
        "logreg_c0.1": lambda d: fit_logreg(d, 0.1),
        "logreg_c1": lambda d: fit_logreg(d, 1.0),
        "mlp": fit_mlp,
        "knn25": lambda d: fit_knn(d, 25),
        "knn50": lambda d: fit_knn(d, 50),
        "knn100": lambda d: fit_knn(d, 100),
        "blend_logreg_knn_prior": blend,
        "blend_mlp_knn_prior": blend_mlp,
    }


def gbm_predict(train: Data, test: Data) -> FloatMatrix:
    """Gradient boosting (measured only: a saved router cannot hold it)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    out = np.zeros((test.emb.shape[0], train.labels.shape[1]), dtype=np.float32)
    for t in range(train.labels.shape[1]):
        keep = ~np.isnan(train.labels[:, t])
        gbm = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0
        )
        gbm.fit(np.hstack([train.emb, train.dense])[keep], (train.labels[keep, t] >= 0.5).astype(int))
        out[:, t] = gbm.predict_proba(np.hstack([test.emb, test.dense]))[:, 1]
    return out


def apgr_of(probs: npt.NDArray[Any], d: Data, rule: Rule) -> dict[str, float]:
    """APGR of routing between the cheapest and the strongest tier, combined and per benchmark."""
    need = deficits(probs, rule)[:, 0]
    lab = d.labels
    keep = ~np.isnan(lab[:, 0]) & ~np.isnan(lab[:, -1])
    out = {"combined": gain_curve(need[keep], lab[keep, 0], lab[keep, -1]).apgr()}
    bench = np.asarray(d.benchmarks)
    for b in sorted(set(d.benchmarks)):
        m = keep & (bench == b)
        if b and m.sum() >= 20:
            out[b] = gain_curve(need[m], lab[m, 0], lab[m, -1]).apgr()
    return out


def subset(d: Data, idx: npt.NDArray[np.int64]) -> Data:
    return Data(d.emb[idx], d.dense[idx], d.labels[idx], [d.benchmarks[i] for i in idx])


@dataclass
class Selection:
    """What cross-validating the candidates found."""

    name: str
    rule: Rule
    scores: dict[str, dict[str, float]]
    """APGR per `candidate/rule`, combined and per benchmark."""
    oof: dict[str, npt.NDArray[np.float32]]
    """Per candidate, its out-of-fold probabilities for every prompt (cross-fitted calibration reads them)."""


def select(
    d: Data,
    features: RouterFeatures,
    folds: int = 3,
    seed: int = 0,
    with_gbm: bool = True,
    only: Sequence[str] | None = None,
) -> Selection:
    """Cross-validate every candidate (or those in `only`) on `d`; return the best (name, rule), all scores and
    the out-of-fold predictions."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(d.emb.shape[0])
    parts = np.array_split(order, folds)
    fitters = candidates(features)
    if only:
        unknown = sorted(set(only) - set(fitters))
        if unknown:
            raise InputError(f"unknown router models {unknown}; use some of {', '.join(fitters)}")
        fitters = {k: v for k, v in fitters.items() if k in only}
    oof: dict[str, npt.NDArray[np.float32]] = {}
    names = [*fitters, *(["gbm"] if with_gbm and _has_gbm() else [])]
    for name in names:
        preds = np.zeros(d.labels.shape, dtype=np.float32)
        for k in range(folds):
            test_idx = parts[k]
            train_idx = np.concatenate([parts[j] for j in range(folds) if j != k])
            tr, te = subset(d, train_idx), subset(d, test_idx)
            if name == "gbm":
                preds[test_idx] = gbm_predict(tr, te)
            else:
                preds[test_idx] = fitters[name](tr).predict(te.emb, te.dense)
        oof[name] = preds
    scores: dict[str, dict[str, float]] = {}
    for name, preds in oof.items():
        for rule in ("gap", "absolute"):
            scores[f"{name}/{rule}"] = apgr_of(preds, d, rule)
    pickable = {k: v for k, v in scores.items() if not k.startswith("gbm/")}
    best = max(pickable, key=lambda k: pickable[k]["combined"])
    name, rule = best.split("/")
    return Selection(name, rule, scores, oof)  # type: ignore[arg-type]


def _has_gbm() -> bool:
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401
    except ImportError:
        return False
    return True


def _views(
    emb: FloatMatrix,
    outcomes: Outcomes,
    fit_idx: npt.NDArray[np.int64],
    lm: LMSpec | None,
    lm_vectors: FloatMatrix | None,
    cache: Path | None,
) -> list[tuple[LMFeatures | None, FloatMatrix]]:
    """The embeddings a router may read: `emb` alone, or with the LM view appended at its given scale, or at each
    of `LM_SCALES` beside `emb` alone (the view's standardisation is fitted on the `fit_idx` prompts)."""
    if lm is None:
        return [(None, emb)]
    raw = (
        lm_vectors if lm_vectors is not None else lm_prompt_vectors(outcomes.prompts, LMVectorizer(lm), cache)
    )
    if raw.shape[0] != len(outcomes):
        raise InputError(f"got LM vectors for {raw.shape[0]} prompts, the outcomes have {len(outcomes)}")
    scales = LM_SCALES if lm.scale is None else (lm.scale,)
    fitted = [LMFeatures.fit(raw[fit_idx], lm, scale) for scale in scales]
    with_lm: list[tuple[LMFeatures | None, FloatMatrix]] = [(f, f.apply(emb, raw)) for f in fitted]
    return [(None, emb), *with_lm] if lm.scale is None else with_lm


def _cv_apgr(found: Selection | None, model: str | None, rule: Rule | None) -> float:
    """The combined CV APGR of what would be trained: the picked candidate, or the forced model (under the gap
    rule unless one is given: it won every CV run measured); -1 without a cross-validation."""
    if found is None:
        return -1.0
    key = f"{found.name}/{rule or found.rule}" if model is None else f"{model}/{rule or 'gap'}"
    return found.scores[key]["combined"]


@dataclass
class TrainedRouter:
    """What training produced, before or after saving."""

    card: dict[str, Any]
    model: TierModel
    features: RouterFeatures
    calib_probs: FloatMatrix
    calib_labels: npt.NDArray[np.float64]
    folder: Path | None = None
    selection: dict[str, dict[str, float]] = field(default_factory=dict)
    lm: LMFeatures | None = None
    """The LM view appended to the embedding, when the router reads one."""

    def features_of(self, emb: FloatMatrix, lm_vectors: FloatMatrix | None) -> FloatMatrix:
        """The embedding the model reads: `emb`, with the LM view of the same prompts when the router has one."""
        if self.lm is None:
            return emb
        if lm_vectors is None:
            raise InputError(
                f"router {self.card['name']!r} reads an LM view ({self.lm.spec.name}): give its vectors"
            )
        return self.lm.apply(emb, lm_vectors)


def train_router(
    outcomes: Outcomes,
    embedder: Embedder,
    *,
    name: str = "router",
    target: Mapping[str, float] | None = None,
    tier_prices: Sequence[Mapping[str, Any] | None] | None = None,
    calibration: str = "cross-fit",
    calibration_fraction: float = 0.25,
    model: str | None = None,
    rule: Rule | None = None,
    seed: int = 0,
    cache: Path | None = None,
    embeddings: FloatMatrix | None = None,
    with_gbm: bool = True,
    candidates_only: Sequence[str] | None = None,
    lm: LMSpec | None = None,
    lm_vectors: FloatMatrix | None = None,
) -> TrainedRouter:
    """Pick, fit and calibrate a router on `outcomes`.

    Args:
        outcomes: Labels per prompt and tier (cheapest tier first).
        embedder: The encoder whose embeddings the router reads (the packaged MiniLM in production).
        name: The router's name (its folder under `<home>/routers`).
        target: `{"strong_share": x}` (share of calls past the cheapest tier) or `{"quality_floor": y}`
            (fraction of the strongest tier's quality); default a strong share of 0.5.
        tier_prices: Per tier, `{"model", "input", "output", "usd_per_query"}` at training time (for the card).
        calibration: `cross-fit` (default): fit the model on every label and calibrate the threshold on the
            out-of-fold predictions of the cross-validation; `holdout`: fit on `1 - calibration_fraction` of the
            labels and calibrate on the rest.
        calibration_fraction: With `holdout`, the share of the prompts held out to calibrate the threshold.
        model: Force a candidate by name instead of picking by cross-validation.
        rule: Force `gap` or `absolute`.
        embeddings: Precomputed embeddings of `outcomes.prompts` (skips the embedder).
        with_gbm: Also measure gradient boosting in the selection (slow; never picked).
        candidates_only: Cross-validate only these candidates (faster).
        lm: Also read the local LM's view of each prompt (`lm_vectors`): with `lm.scale` None, the router is
            cross-validated without the view and with it at each of `LM_SCALES`, and the best is kept (each try
            costs one selection).
        lm_vectors: Precomputed raw LM vectors of `outcomes.prompts` (skips running the LM).

    Raises:
        InputError: `name` is not a plain name (`check_name`: it would write outside `<home>/routers`), or
            there are too few labels.
    """
    check_name(name, "router")
    _sklearn()
    if len(outcomes) < 40:
        raise InputError(
            f"a router needs at least 40 labelled prompts to train and calibrate, got {len(outcomes)}"
        )
    if calibration not in ("cross-fit", "holdout"):
        raise InputError(f"calibration must be 'cross-fit' or 'holdout', got {calibration!r}")
    target = dict(target or {"strong_share": 0.5})
    emb = embeddings if embeddings is not None else embed_prompts(outcomes.prompts, embedder, cache)
    if calibration == "holdout":
        fit_idx, cal_idx = split_indices(outcomes, [1.0 - calibration_fraction, calibration_fraction], seed)
    else:
        fit_idx = cal_idx = np.arange(len(outcomes), dtype=np.int64)
    fit_o = outcomes.subset(fit_idx)
    features = RouterFeatures.fit(fit_o.prompts, fit_o.subjects, fit_o.benchmarks)
    dense = features.dense(outcomes.prompts, outcomes.subjects, outcomes.benchmarks)
    fitters = candidates(features)
    if model is not None and model not in fitters:
        raise InputError(f"unknown router model {model!r}; use one of {', '.join(fitters)}")
    if lm is not None and len(fit_idx) < LM_FEW_LABELS:
        log.warning(
            "the LM view (--lm-layer) helped routers trained on thousands of labels and hurt one trained on 760; "
            "with %d, compare `ragcli eval router` with and without it before you keep it",
            len(fit_idx),
        )
    views = _views(emb, outcomes, fit_idx, lm, lm_vectors, cache)
    view_cv: dict[str, float] = {}
    best: tuple[float, LMFeatures | None, Selection | None, Data] | None = None
    for view, view_emb in views:
        full = Data(view_emb, dense, outcomes.labels, outcomes.benchmarks)
        fit_d = subset(full, fit_idx)
        found: Selection | None = None
        if model is None:
            found = select(fit_d, features, seed=seed, with_gbm=with_gbm, only=candidates_only)
        elif calibration == "cross-fit" or len(views) > 1:
            # a forced model: cross-validate it alone, for its out-of-fold predictions (or to pick the LM view)
            found = select(fit_d, features, seed=seed, with_gbm=False, only=[model])
        cv = _cv_apgr(found, model, rule)
        view_cv["none" if view is None else f"{view.scale:g}"] = cv
        if best is None or cv > best[0]:
            best = (cv, view, found, full)
    assert best is not None
    _, lm_view, found, full = best
    if model is None:
        assert found is not None
        model, rule = found.name, rule or found.rule
    rule = rule or "gap"
    fit_d, cal_d = subset(full, fit_idx), subset(full, cal_idx)
    fitted = fitters[model](fit_d)
    if calibration == "cross-fit":
        assert found is not None
        calib_probs = found.oof[model]
    else:
        calib_probs = fitted.predict(cal_d.emb, cal_d.dense)
    selection = found.scores if found is not None else {}
    tiers = [
        {"name": t, **dict((tier_prices[i] or {}) if tier_prices else {})}
        for i, t in enumerate(outcomes.tiers)
    ]
    tier_cost = [float(t.get("usd_per_query") or 10.0**i) for i, t in enumerate(tiers)]
    if set(target) == {"strong_share"}:
        threshold = threshold_for_share(calib_probs, rule, float(target["strong_share"]))
    elif set(target) == {"quality_floor"}:
        threshold = threshold_for_quality(
            calib_probs, cal_d.labels, rule, float(target["quality_floor"]), tier_cost
        )
    else:
        raise InputError(f"target must be {{strong_share: x}} or {{quality_floor: y}}, got {target}")
    card = {
        "name": name,
        "version": 1,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": outcomes.source,
        "format": outcomes.format,
        "labels": len(outcomes),
        "labels_fit": len(fit_idx),
        "labels_calibration": len(cal_idx),
        "calibration": calibration,
        "tiers": tiers,
        "embedder": {"model": embedder.model_name, "dim": int(emb.shape[1])},
        "lm": None if lm_view is None else lm_view.to_json(),
        "lm_view_cv_apgr": view_cv if len(views) > 1 else {},
        "features": features.to_json(),
        "model_name": model,
        "rule": rule,
        "target": target,
        "threshold": threshold,
        "calibration_apgr": apgr_of(calib_probs, cal_d, rule),
        "selection_cv_apgr": selection,
    }
    return TrainedRouter(card, fitted, features, calib_probs, cal_d.labels, selection=selection, lm=lm_view)


def save_router(trained: TrainedRouter, home: Path) -> Path:
    """Write the router folder `<home>/routers/NAME/` (card.json + weights.npz)."""
    folder: Path = routers_dir(home) / check_name(str(trained.card["name"]), "router")
    folder.mkdir(parents=True, exist_ok=True)
    spec, arrays = trained.model.export("m_")
    card = {**trained.card, "model": spec}
    arrays = {**arrays, "calib_probs": trained.calib_probs, "calib_labels": trained.calib_labels}
    if trained.lm is not None:
        arrays.update(trained.lm.arrays())
    np.savez_compressed(folder / WEIGHTS, **arrays)  # type: ignore[arg-type]
    (folder / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    trained.folder = folder
    return folder
