"""The local SmolLM2-135M's hidden states as router features, beside the MiniLM embedding (issue 11).

    .venv/bin/python benchmarks/routing_lm_features.py [--data ../shared/data] [--layers 8 15 22] [--vectors F.npz]

The local tier reads every prompt anyway when it runs, so its inner representation of the prompt is a second view
that costs no money. Each prompt of `routing/outcomes.jsonl` goes through the packaged SmolLM2-135M (the GGUF,
de-quantized by transformers; its first max(layers) + 1 blocks only, no LM head), at most 256 tokens; a layer's
vector is the mean of its hidden states over the prompt's tokens (576 numbers). `--vectors F.npz` keeps them
(computed once: about 12 minutes for layer 15 on 2 cores).

Protocol of `routing.py`: five 70/30 splits stratified by benchmark; features standardised on the training part;
each model fitted on the 70 % and read by held-out APGR (mean ± sd over the seeds). Rows: the router's features
(MiniLM embedding plus `RouterFeatures.dense`: cheap features, subject and benchmark one-hot) without and with
each layer's vector, under a logistic regression per tier (gap rule) and a ridge regression on strong - weak, at
several regularisation strengths (every row is shown; none is picked on the held-out part).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from routing_splits import RoutingStudy  # noqa: E402
from trained_common import commit, machine  # noqa: E402


def lm_vectors(prompts: list[str], layers: list[int], max_tokens: int = 256) -> dict[int, np.ndarray]:
    """Mean-pooled hidden states of the packaged SmolLM2 after each of `layers` blocks, one row per prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragcli.resources import local_llm_gguf

    gguf = local_llm_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    base = model.model.eval()
    keep = max(layers) + 1  # hidden_states[k] is the output of block k - 1 while a later block exists
    base.layers = base.layers[:keep]
    base.config.num_hidden_layers = keep
    tok.padding_side = "right"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths batch together
    out = {layer: np.zeros((len(prompts), base.config.hidden_size), dtype=np.float32) for layer in layers}
    with torch.inference_mode():
        for b in range(0, len(order), 16):
            batch = order[b : b + 16]
            enc = tok(
                [prompts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_tokens,
            )
            hidden = base(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for layer in layers:
                pooled = (hidden[layer] * mask).sum(1) / mask.sum(1)
                out[layer][batch] = pooled.numpy()
    return out


C_GRID = (0.0001, 0.0003, 0.001, 0.003)
"""The logistic regressions' strengths: the fixed rows and the inner-CV grid alike."""


def gap_scores(
    xtr: np.ndarray, weak: np.ndarray, strong: np.ndarray, xte: np.ndarray, c: float
) -> np.ndarray:
    """Standardise on `xtr`, fit a logistic regression per tier, score `xte` by P(strong) - P(weak)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler().fit(xtr)
    a, b = scale.transform(xtr), scale.transform(xte)
    p_strong = LogisticRegression(C=c, max_iter=3000).fit(a, strong).predict_proba(b)[:, 1]
    p_weak = LogisticRegression(C=c, max_iter=3000).fit(a, weak).predict_proba(b)[:, 1]
    return np.asarray(p_strong - p_weak)


def inner_cv_pick(
    x: np.ndarray,
    vectors: dict[int, np.ndarray],
    train: np.ndarray,
    study: RoutingStudy,
    weak: np.ndarray,
    strong: np.ndarray,
) -> tuple[int | None, float]:
    """The (layer or None, C) whose out-of-fold scores in 3-fold CV over the training part (stratified by
    benchmark) give the highest combined APGR."""
    from sklearn.model_selection import StratifiedKFold

    from ragcli.eval.routing_metrics import gain_curve

    bench = np.asarray(study.outcomes.benchmarks)[train]
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x, bench))
    best: tuple[float, int | None, float] = (-1.0, None, C_GRID[0])
    for layer in (None, *vectors):
        full = x if layer is None else np.hstack([x, vectors[layer][train]])
        for c in C_GRID:
            oof = np.zeros(len(train))
            for tr, te in folds:
                oof[te] = gap_scores(full[tr], weak[tr], strong[tr], full[te], c)
            apgr = gain_curve(oof, weak, strong).apgr()
            if apgr > best[0]:
                best = (apgr, layer, c)
    return best[1], best[2]


def through_router(
    study: RoutingStudy, vectors: dict[int, np.ndarray], seeds: list[int], scales: list[float]
) -> str:
    """`routing.py`'s own measurement (`evaluate_router`: the shipped candidates picked by 3-fold CV, the
    threshold cross-fitted to a 0.5 strong share, no gradient boosting) with the MiniLM embedding alone, then with
    each layer's LM vector appended (standardised on the seed's training part, times each scale)."""
    from ragcli.config import CostConfig
    from ragcli.cost.prices import PriceTable
    from ragcli.eval.router_eval import evaluate_router
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.train.router_outcomes import split_indices

    o = study.outcomes
    prices = PriceTable.load(CostConfig.model_validate({"use_litellm_prices": False}))
    embedder = SentenceTransformerEmbedder()
    lines = [
        "| embedding given to `evaluate_router` | combined | GSM8K | MMLU | picked per seed | strong share reached |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    runs: list[tuple[str, int | None, float]] = [("MiniLM (as shipped)", None, 0.0)]
    runs += [(f"MiniLM + {scale:g} x SmolLM2 layer {k}", k, scale) for k in vectors for scale in scales]
    for name, layer, scale in runs:
        got: list[dict[str, Any]] = []
        for seed in seeds:
            emb = study.embeddings
            if layer is not None:
                train = split_indices(o, [0.7, 0.3], seed)[0]
                vec = vectors[layer]
                mean, std = vec[train].mean(0), vec[train].std(0) + 1e-6
                emb = np.hstack([emb, scale * (vec - mean) / std]).astype(np.float32)
            got.append(
                evaluate_router(
                    o,
                    embedder,
                    target={"strong_share": 0.5},
                    prices=prices,
                    seed=seed,
                    embeddings=emb,
                    with_gbm=False,
                )
            )
        cells = []
        for scope in ("combined", "gsm8k", "mmlu"):
            part = [r["combined"] if scope == "combined" else r["benchmarks"][scope] for r in got]
            vals = [p["routers"]["router"]["apgr"] for p in part]
            cells.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f}")
        picked = ", ".join(str(r["model"]) for r in got)
        shares = ", ".join(f"{r['strong_share_reached']:.3f}" for r in got)
        lines.append(f"| {name} | {' | '.join(cells)} | {picked} | {shares} |")
    return "\n".join(lines)


def main() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--layers", type=int, nargs="+", default=[15])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--vectors", type=Path, help="an .npz to keep the LM vectors in (read when it exists)")
    ap.add_argument(
        "--through-router",
        type=float,
        nargs="+",
        metavar="SCALE",
        help="also run the product's own evaluate_router (candidates, CV pick, cross-fitted calibration) with each "
        "layer's vector, standardised on the training part and multiplied by SCALE, appended to the embedding",
    )
    ap.add_argument(
        "--inner-cv",
        action="store_true",
        help="also pick the layer (or none) and C by 3-fold CV inside each training part, as a router would",
    )
    args = ap.parse_args()
    study = RoutingStudy.load(args.data)
    start = time.time()
    if args.vectors and args.vectors.is_file():
        stored = np.load(args.vectors)
        vectors = {layer: stored[f"layer{layer}"] for layer in args.layers}
    else:
        vectors = lm_vectors(list(study.outcomes.prompts), args.layers)
        if args.vectors:
            np.savez(args.vectors, **{f"layer{k}": v for k, v in vectors.items()})
    lm_seconds = time.time() - start
    picks: list[str] = []
    for split in study.splits(args.seeds):
        weak, strong = study.weak[split.train], study.strong[split.train]
        views: dict[int | None, tuple[np.ndarray, np.ndarray]] = {None: (split.x_train, split.x_test)}
        for layer, vec in vectors.items():
            views[layer] = (
                np.hstack([split.x_train, vec[split.train]]),
                np.hstack([split.x_test, vec[split.test]]),
            )
        for layer, (xtr, xte) in views.items():
            view = "MiniLM + dense" if layer is None else f"MiniLM + dense + SmolLM2 layer {layer}"
            for c in C_GRID:
                study.record(
                    f"{view}; logistic per tier, gap, C {c:g}",
                    gap_scores(xtr, weak, strong, xte, c),
                    split.test,
                )
            scale = StandardScaler().fit(xtr)
            for alpha in (10000.0, 30000.0, 100000.0):
                ridge = Ridge(alpha=alpha).fit(scale.transform(xtr), strong - weak)
                study.record(
                    f"{view}; ridge on strong - weak, alpha {alpha:g}",
                    ridge.predict(scale.transform(xte)),
                    split.test,
                )
        if args.inner_cv:
            layer, c = inner_cv_pick(split.x_train, vectors, split.train, study, weak, strong)
            xtr, xte = views[layer]
            study.record(
                "picked by 3-fold CV inside the training part",
                gap_scores(xtr, weak, strong, xte, c),
                split.test,
            )
            picks.append(f"{'no vector' if layer is None else f'layer {layer}'}, C {c:g}")
    if picks:
        print(f"- inner-CV picks per seed: {'; '.join(picks)}")
    if args.through_router:
        print(through_router(study, vectors, args.seeds, args.through_router) + "\n")
    print(
        f"- commit {commit()}, {machine()}; seeds {args.seeds}; LM vectors for {len(study.outcomes.prompts)} "
        f"prompts ({', '.join(f'layer {k}' for k in args.layers)}) in {lm_seconds:.0f} s\n"
    )
    print(study.table("features (standardised); model"))


if __name__ == "__main__":
    main()
