"""`ragcli eval router`: a router's APGR, CPT(50 %), CPT(80 %) and dollars at 95 % of the strong model's quality,
beside random, prompt-length and per-subject-prior baselines, per benchmark and combined.

Without a trained router, one is trained on one part of the file (fit + calibrate) and reported on the rest; with
one, it is scored on the whole file (the prior baseline is then fitted out of fold). Routing is between the
cheapest and the strongest tier of the outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragcli.eval.routing_metrics import (
    dollars_per_1k,
    gain_curve,
    length_scores,
    prior_scores,
    random_scores,
    score_router,
)
from ragcli.generation.learned_router import choose_tiers

if TYPE_CHECKING:
    from ragcli.cost.prices import PriceTable
    from ragcli.generation.learned_router import LearnedRouter
    from ragcli.generation.lm_vectors import LMSpec
    from ragcli.ingest.protocols import Embedder
    from ragcli.train.router_outcomes import Outcomes

DEFAULT_OUTPUT_TOKENS = 200
"""Assumed answer length when the outcomes carry no costs (GSM8K answers reason step by step; MMLU ones are short)."""


def per_query_usd(
    outcomes: Outcomes, prices: PriceTable | None, output_tokens: int = DEFAULT_OUTPUT_TOKENS
) -> tuple[npt.NDArray[np.float64], str]:
    """Dollars of one query per prompt and tier: from the file's costs, else the price table x tokens."""
    if outcomes.costs is not None and not np.isnan(outcomes.costs).any():
        return outcomes.costs, "costs in the outcomes file"
    from ragcli.cost.tokens import counter_for

    out = np.full((len(outcomes), len(outcomes.tiers)), np.nan)
    for t, tier in enumerate(outcomes.tiers):
        price = prices.price(tier) if prices is not None else None
        if price is None:
            continue
        count = counter_for(tier)
        out[:, t] = [price.cost(count(p), output_tokens) for p in outcomes.prompts]
    return out, f"price table x prompt tokens + {output_tokens} output tokens per answer"


def _report(
    scores: Mapping[str, npt.NDArray[np.float64]],
    weak: npt.NDArray[np.float64],
    strong: npt.NDArray[np.float64],
    usd: npt.NDArray[np.float64] | None,
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, s in scores.items():
        row = asdict(score_router(name, s, weak, strong))
        if usd is not None and not np.isnan(usd).any():
            d, share = dollars_per_1k(
                gain_curve(s, weak, strong), float(usd[:, 0].mean()), float(usd[:, -1].mean())
            )
            row["usd_per_1k_at_95pct"] = d
            row["strong_share_at_95pct"] = share
        rows[name] = row
    return {
        "n": int(weak.size),
        "weak_quality": float(weak.mean()),
        "strong_quality": float(strong.mean()),
        "routers": rows,
    }


def _oof_prior(o: Outcomes, folds: int = 5, seed: int = 0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    parts = np.array_split(rng.permutation(len(o)), folds)
    out = np.zeros(len(o))
    groups = o.groups
    for k in range(folds):
        train = np.concatenate([parts[j] for j in range(folds) if j != k])
        out[parts[k]] = prior_scores(
            [groups[i] for i in train], o.labels[train, 0], o.labels[train, -1], [groups[i] for i in parts[k]]
        )
    return out


def evaluate_router(
    outcomes: Outcomes,
    embedder: Embedder,
    *,
    router: LearnedRouter | None = None,
    target: Mapping[str, float] | None = None,
    prices: PriceTable | None = None,
    test_fraction: float = 0.3,
    seed: int = 0,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    embeddings: npt.NDArray[np.float32] | None = None,
    cache: Any = None,
    with_gbm: bool = True,
    candidates_only: Sequence[str] | None = None,
    calibration: str = "cross-fit",
    lm: LMSpec | None = None,
    lm_vectors: npt.NDArray[np.float32] | None = None,
    split: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None,
) -> dict[str, Any]:
    """Score a router (given, or trained here on one part, calibrated as `train_router`'s `calibration` says)
    against the baselines on held-out outcomes. `lm` gives the router trained here the local LM's view
    (`train_router`); `lm_vectors` are its raw vectors for every prompt (default: computed here). `split` gives
    the training and held-out prompts' indices instead of a seeded `test_fraction` split (a learning curve
    trains on part of a training part)."""
    from ragcli.generation.lm_vectors import LMVectorizer
    from ragcli.train.router_outcomes import split_indices
    from ragcli.train.router_training import embed_prompts, lm_prompt_vectors, train_router

    emb = embeddings if embeddings is not None else embed_prompts(outcomes.prompts, embedder, cache)
    # the LM view the router reads: its card's, or the one asked for the router trained here
    spec = lm if router is None else (router.lm.spec if router.lm is not None else None)
    if spec is not None and lm_vectors is None:
        lm_vectors = lm_prompt_vectors(outcomes.prompts, LMVectorizer(spec), cache)
    result: dict[str, Any] = {"source": outcomes.source, "tiers": outcomes.tiers}
    if router is None:
        train_idx, test_idx = (
            split
            if split is not None
            else split_indices(outcomes, [1.0 - test_fraction, test_fraction], seed)
        )
        train_o, test = outcomes.subset(train_idx), outcomes.subset(test_idx)
        trained = train_router(
            train_o,
            embedder,
            target=target,
            embeddings=emb[train_idx],
            seed=seed,
            with_gbm=with_gbm,
            candidates_only=candidates_only,
            calibration=calibration,
            lm=lm,
            lm_vectors=None if lm_vectors is None else lm_vectors[train_idx],
        )
        from ragcli.generation.router_features import RouterFeatures

        features: RouterFeatures = trained.features
        test_emb = trained.features_of(emb[test_idx], None if lm_vectors is None else lm_vectors[test_idx])
        probs = trained.model.predict(test_emb, features.dense(test.prompts, test.subjects, test.benchmarks))
        rule, threshold, card = trained.card["rule"], float(trained.card["threshold"]), trained.card
        groups_train = train_o.groups
        prior = prior_scores(groups_train, train_o.labels[:, 0], train_o.labels[:, -1], test.groups)
        result["mode"] = f"trained on {len(train_idx)} prompts, reported on the other {len(test_idx)}"
        result["selection_cv_apgr"] = trained.selection
    else:
        test = outcomes
        probs = router.predict(
            test.prompts, test.subjects, test.benchmarks, embeddings=emb, lm_vectors=lm_vectors
        )
        rule, threshold, card = router.rule, router.threshold, router.card
        prior = _oof_prior(test, seed=seed)
        result["mode"] = f"router {card['name']!r} scored on the whole file ({len(test)} prompts)"
    from ragcli.generation.learned_router import deficits

    need = deficits(probs, rule)[:, 0]
    scores = {
        "router": need,
        "random": random_scores(len(test), seed),
        "length": length_scores(test.prompts),
        "subject_prior": prior,
    }
    usd, usd_source = per_query_usd(test, prices, output_tokens)
    lab = test.labels
    keep = ~np.isnan(lab[:, 0]) & ~np.isnan(lab[:, -1])
    bench = np.asarray(test.benchmarks)
    result["model"] = card.get("model_name")
    result["lm"] = card.get("lm")
    result["lm_view_cv_apgr"] = card.get("lm_view_cv_apgr") or {}
    result["rule"] = rule
    result["threshold"] = threshold
    result["usd_source"] = usd_source
    result["combined"] = _report(
        {k: v[keep] for k, v in scores.items()}, lab[keep, 0], lab[keep, -1], usd[keep]
    )
    result["benchmarks"] = {}
    for b in sorted(set(test.benchmarks)):
        m = keep & (bench == b)
        if b and m.sum() >= 2:
            result["benchmarks"][b] = _report(
                {k: v[m] for k, v in scores.items()}, lab[m, 0], lab[m, -1], usd[m]
            )
    chosen = choose_tiers(probs, threshold, rule)
    result["target"] = card.get("target")
    result["strong_share_reached"] = float((chosen != 0).mean())
    if not np.isnan(usd).any():
        result["usd_per_1k_always_strong"] = float(1000 * usd[:, -1].mean())
        result["usd_per_1k_always_weak"] = float(1000 * usd[:, 0].mean())
    return result


def summary_rows(
    result: Mapping[str, Any], names: Sequence[str] = ("router", "subject_prior", "length", "random")
) -> list[list[str]]:
    """Table rows: scope, router, n, APGR, CPT(50 %), CPT(80 %), $/1k at 95 %."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    def usd(x: float | None) -> str:
        return "-" if x is None else f"${x:.2f}"

    rows: list[list[str]] = []
    scopes = [("combined", result["combined"]), *result["benchmarks"].items()]
    for scope, rep in scopes:
        for name in names:
            r = rep["routers"][name]
            rows.append(
                [
                    scope,
                    name,
                    str(rep["n"]),
                    f"{r['apgr']:.3f}",
                    pct(r["cpt50"]),
                    pct(r["cpt80"]),
                    usd(r.get("usd_per_1k_at_95pct")),
                ]
            )
    return rows
