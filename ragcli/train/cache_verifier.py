"""`ragcli train cache-verifier`: train the answer cache's verifier on labeled question pairs, then calibrate it.

Recipe (sized for a shared 2-core CPU, minutes not hours):

1. Split the pairs by connected component (no question on both sides) into a training part and a held-out
   calibration part.
2. `kind="head"`: the packaged MiniLM, frozen (`epochs=0`) or fine-tuned as a bi-encoder with
   sentence-transformers' OnlineContrastiveLoss, then a one-hidden-layer network over
   `[u * v, |u - v|, cosine, pair features]`, stored as numpy arrays.
   `kind="cosine"` (default): the same encoder (frozen or fine-tuned) and its cosine alone, no head. On QQP it is
   the only kind whose threshold calibrates (at precision 0.90: report precision 0.907, hit rate 0.241 with the
   encoder fine-tuned for one epoch), where the head over the same encoder overfits (0.08 at best, in-sample).
   `kind="cross"`: a cross-encoder that reads both questions: `base` (default the packaged MiniLM, which gets a
   new one-logit head) fine-tuned on the training pairs (binary cross-entropy, max 64 tokens, each pair in a
   random order) for `epochs`; with `epochs=0`, `base` must already be a one-logit cross-encoder (a path or hub
   id, e.g. one trained on duplicate questions) and is only calibrated. On QQP a MiniLM cross-encoder fine-tuned
   here on 8,000 pairs is below the frozen head's cosine (benchmarks/results/cache.md): MiniLM's sentence
   vectors were trained on duplicate questions, its new cross head was not; use `cross` with a stronger `base`.
   `kind="aligned"`: the same encoder (frozen or fine-tuned on the training part), read token by token: a
   logistic regression over the cosine, the tokens' alignment (`ragcli.generation.token_alignment`) and the pair
   features. It is fitted on the calibration part, which the encoder never saw, in `ALIGN_FOLDS` folds: the
   threshold is chosen on each fold's scores by the regression fitted on the others, and the regression kept is
   fitted on the whole part. On two QQP splits it is more precise than the cosine of the same fine-tuned encoder
   at hit rates 0.2-0.3, not at precision 0.95 (benchmarks/results/cache.md, 2026-12-05).
3. Threshold: the lowest score whose held-out precision has a Wilson lower bound >= the target.

The verifier folder holds a JSON card saying all of this (see `ragcli.generation.cache_verifier`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ragcli.errors import InputError
from ragcli.eval.cache_pairs import LabeledPair, file_sha256, load_pairs, split_pairs
from ragcli.generation.cache_calibration import Calibration, choose_threshold
from ragcli.generation.cache_verifier import (
    CARD,
    FORMAT,
    HEAD,
    MODEL,
    AlignedVerifier,
    CacheVerifier,
    CosineVerifier,
    CrossVerifier,
    head_logits,
    open_verifier,
    pair_matrix,
    probabilities,
    verifiers_dir,
)
from ragcli.generation.pair_features import FEATURE_NAMES
from ragcli.generation.token_alignment import ALIGNED_INPUT, TokenEncoder
from ragcli.ingest.protocols import Embedder
from ragcli.resources import PACKAGED_EMBEDDER
from ragcli.trained_models import check_name

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

KINDS = ("cosine", "aligned", "head", "cross")
ALIGN_FOLDS = 5
"""Folds of the calibration part that the `aligned` kind's regression is cross-fitted in."""
ALIGN_L2 = 10.0
"""The regression's L2 penalty (standardised inputs). On QQP it stays at or above the cosine from 500 calibration
pairs, where 1.0 fell far below it with the frozen encoder; with 7,272 pairs and the fine-tuned encoder 1.0 reaches
a little more (benchmarks/results/cache.md, 2026-12-05)."""


@dataclass(frozen=True)
class VerifierRecipe:
    """How a verifier is trained. The defaults train in a few minutes on 2 CPU cores."""

    kind: Literal["cross", "head", "cosine", "aligned"] = "cosine"
    """`head`: a network over two sentence vectors; `cosine`: their cosine alone; `aligned`: a regression over the
    cosine, the tokens' alignment and pair features; `cross`: a cross-encoder reads both questions."""
    base: str | None = None
    """`cross` only: the model to start from (a folder or hub id); default the packaged MiniLM."""
    max_pairs: int = 8000
    """Pairs read from the file (the first ones); training and calibration parts are cut from these."""
    calib_fraction: float = 0.3
    epochs: int = 0
    """Fine-tuning epochs: of the encoder of the head, cosine and aligned kinds (0 keeps the packaged encoder
    frozen; the head and cosine kinds then reuse the cache's own vectors), or of the cross-encoder (0 calibrates
    `base` as it is)."""
    max_seq_len: int = 64
    batch_size: int = 32
    learning_rate: float = 2e-5
    hidden: int = 64
    """Hidden units of the head kind's network; 0 makes it a logistic regression (the aligned kind's always is)."""
    head_epochs: int = 60
    head_lr: float = 1e-3
    weight_decay: float = 1e-3
    target_precision: float = 0.95
    confidence: float = 0.95
    seed: int = 0

    def check(self) -> None:
        problems = []
        if self.max_pairs < 50:
            problems.append(f"max_pairs must be at least 50, got {self.max_pairs}")
        if not 0.05 <= self.calib_fraction <= 0.8:
            problems.append(f"calib_fraction must be in [0.05, 0.8], got {self.calib_fraction}")
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.epochs < 0 or self.head_epochs < 1 or self.hidden < 0:
            problems.append("epochs >= 0, head_epochs >= 1 and hidden >= 0 are required")
        if self.kind == "cross" and self.epochs == 0 and self.base is None:
            problems.append(
                "a cross verifier with epochs=0 calibrates a cross-encoder you already have: give base (a folder "
                "or hub id), or epochs >= 1 to train one from the packaged encoder"
            )
        if self.base is not None and self.kind != "cross":
            problems.append(
                f"base is for kind 'cross' only; the {self.kind} kind starts from the packaged encoder"
            )
        if not 0.5 <= self.target_precision < 1.0:
            problems.append(f"target_precision must be in [0.5, 1), got {self.target_precision}")
        if problems:
            raise InputError("cache verifier recipe: " + "; ".join(problems))


def _texts(pairs: Sequence[LabeledPair]) -> tuple[list[str], list[str], np.ndarray]:
    return (
        [p.text_a for p in pairs],
        [p.text_b for p in pairs],
        np.asarray([p.label for p in pairs], dtype=np.int64),
    )


def _embed_pairs(
    embed: Callable[[list[str]], np.ndarray], a: list[str], b: list[str]
) -> tuple[np.ndarray, ...]:
    unique = list(dict.fromkeys([*a, *b]))
    vecs = embed(unique)
    row = {t: i for i, t in enumerate(unique)}
    return vecs[[row[t] for t in a]], vecs[[row[t] for t in b]]


def finetune_encoder(
    pairs: Sequence[LabeledPair], out: Path, recipe: VerifierRecipe, progress: Progress | None = None
) -> None:
    """Fine-tune the packaged MiniLM as a bi-encoder on labeled pairs (OnlineContrastiveLoss) into `out`."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import OnlineContrastiveLoss

    from ragcli.resources import embedding_model_dir, offline_env

    offline_env()
    torch.manual_seed(recipe.seed)
    model = SentenceTransformer(str(embedding_model_dir()), device="cpu")
    model.max_seq_length = recipe.max_seq_len
    loss_fn = OnlineContrastiveLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    rng = np.random.default_rng(recipe.seed)
    steps = (len(pairs) + recipe.batch_size - 1) // recipe.batch_size
    total = steps * recipe.epochs
    model.train()
    done = 0
    for _ in range(recipe.epochs):
        order = rng.permutation(len(pairs))
        for s in range(steps):
            batch = [pairs[i] for i in order[s * recipe.batch_size : (s + 1) * recipe.batch_size]]
            feats = [model.tokenize([p.text_a for p in batch]), model.tokenize([p.text_b for p in batch])]
            labels = torch.tensor([p.label for p in batch], dtype=torch.float32)
            loss = loss_fn(feats, labels)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            done += 1
            if progress is not None:
                progress("fine-tune", done, total)
    model.eval()
    model.save(str(out))


def train_head(x: np.ndarray, y: np.ndarray, recipe: VerifierRecipe) -> dict[str, np.ndarray]:
    """Fit the head (standardise, then ReLU layers, then a logit) with AdamW and BCE; returns numpy arrays."""
    import torch

    torch.manual_seed(recipe.seed)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    xs = torch.tensor((x - mean) / std, dtype=torch.float32)
    ys = torch.tensor(y, dtype=torch.float32)
    layers: list[torch.nn.Module] = []
    if recipe.hidden:
        layers += [torch.nn.Linear(x.shape[1], recipe.hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2)]
        layers.append(torch.nn.Linear(recipe.hidden, 1))
    else:
        layers.append(torch.nn.Linear(x.shape[1], 1))
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.head_lr, weight_decay=recipe.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(recipe.seed)
    net.train()
    for _ in range(recipe.head_epochs):
        perm = torch.randperm(len(xs), generator=gen)
        for start in range(0, len(xs), 128):
            idx = perm[start : start + 128]
            loss = loss_fn(net(xs[idx]).squeeze(-1), ys[idx])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    net.eval()
    head: dict[str, np.ndarray] = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        head[f"W{i}"] = lin.weight.detach().numpy().T.astype(np.float32)
        head[f"b{i}"] = lin.bias.detach().numpy().astype(np.float32)
    return head


def _train_cross(
    train: Sequence[LabeledPair],
    tmp: Path,
    card: dict[str, Any],
    recipe: VerifierRecipe,
    progress: Progress | None,
) -> CrossVerifier:
    """Fine-tune `recipe.base` as a cross-encoder on the pairs, each in a random order, into `tmp/model` (or,
    with no epochs, copy `base` there as it is)."""
    import random

    from ragcli.resources import embedding_model_dir, offline_env
    from ragcli.train.cross_encoder_training import Pair, copy_cross_encoder, fine_tune_cross_encoder

    offline_env()
    base = recipe.base or str(embedding_model_dir())
    card.update({"encoder": base, "model": MODEL})
    if recipe.epochs == 0:
        copy_cross_encoder(base, tmp / MODEL, max_length=recipe.max_seq_len)
        (tmp / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
        return CrossVerifier(tmp)
    rng = random.Random(recipe.seed)
    rows = [
        Pair(p.text_a, p.text_b, float(p.label))
        if rng.random() < 0.5
        else Pair(p.text_b, p.text_a, float(p.label))
        for p in train
    ]
    loss = fine_tune_cross_encoder(
        rows,
        tmp / MODEL,
        base=base,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        max_length=recipe.max_seq_len,
        seed=recipe.seed,
        on_step=None if progress is None else lambda step, total, _: progress("fine-tune", step, total),
    )
    card["final_loss"] = round(loss, 4)
    (tmp / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return CrossVerifier(tmp)


def _train_head(
    train: Sequence[LabeledPair],
    tmp: Path,
    card: dict[str, Any],
    recipe: VerifierRecipe,
    embedder: Embedder | None,
    progress: Progress | None,
) -> CacheVerifier:
    """Embed the pairs (fine-tuning the encoder first when `recipe.epochs`), then fit the head on them; the
    cosine kind keeps the encoder and fits nothing."""
    encoder = PACKAGED_EMBEDDER
    if recipe.epochs:
        finetune_encoder(train, tmp / "encoder", recipe, progress)
        encoder = "encoder"
    if embedder is None or recipe.epochs:
        from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

        embed_model = str(tmp / "encoder") if recipe.epochs else PACKAGED_EMBEDDER
        embedder = SentenceTransformerEmbedder(embed_model, batch_size=64)
    else:
        encoder = embedder.model_name
    if recipe.kind == "cosine":
        card["encoder"] = encoder
        (tmp / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
        return CosineVerifier(tmp, embedder=embedder)
    vectors_of = embedder

    def embed(texts: list[str]) -> np.ndarray:
        if progress is not None:
            progress("embed", 0, len(texts))
        return np.asarray(vectors_of.embed(texts).vectors, dtype=np.float32)

    a, b, y = _texts(train)
    ua, ub = _embed_pairs(embed, a, b)
    np.savez(tmp / HEAD, **train_head(pair_matrix(ua, ub, a, b), y, recipe))  # type: ignore[arg-type]
    card.update(
        {
            "encoder": encoder,
            "features": list(FEATURE_NAMES),
            "head": {"input": ["u*v", "|u-v|", "cosine", *FEATURE_NAMES], "hidden": recipe.hidden},
        }
    )
    (tmp / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return CacheVerifier(tmp, embedder=embedder)


def _logistic_head(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """An L2-regularised logistic regression (Newton's method, standardised inputs) in the head's format."""
    from ragcli.train.fusion_training import fit_logistic

    mean, scale, w, b = fit_logistic(x.astype(np.float64), y.astype(np.float64), l2=ALIGN_L2)
    return {
        "mean": np.asarray(mean, dtype=np.float32),
        "std": np.asarray(scale, dtype=np.float32),
        "W0": np.asarray(w, dtype=np.float32).reshape(-1, 1),
        "b0": np.asarray([b], dtype=np.float32),
    }


def _train_aligned(
    train: Sequence[LabeledPair],
    calib: Sequence[LabeledPair],
    tmp: Path,
    card: dict[str, Any],
    recipe: VerifierRecipe,
    progress: Progress | None,
) -> np.ndarray:
    """Fine-tune the encoder on `train` when `recipe.epochs`, then fit the regression on `calib` (cross-fitted);
    returns each calibration pair's out-of-fold score (what the threshold is chosen on)."""
    from ragcli.resources import embedding_model_dir

    encoder = PACKAGED_EMBEDDER
    if recipe.epochs:
        finetune_encoder(train, tmp / "encoder", recipe, progress)
        encoder = "encoder"
    model = str(tmp / "encoder") if recipe.epochs else str(embedding_model_dir())
    a, b, y = _texts(calib)
    if progress is not None:
        progress("align", 0, len(calib))  # the calibration pairs read token by token
    x = TokenEncoder(model, max_seq_len=recipe.max_seq_len).pair_inputs(a, b)
    folds = split_pairs(list(calib), [1.0 / ALIGN_FOLDS] * ALIGN_FOLDS, seed=recipe.seed)
    where = {id(p): k for k, part in enumerate(folds) for p in part}
    fold_of = np.asarray([where.get(id(p), ALIGN_FOLDS - 1) for p in calib])
    scores = np.zeros(len(calib), dtype=np.float64)
    for k in range(ALIGN_FOLDS):
        held = fold_of == k
        if held.any():
            scores[held] = probabilities(head_logits(_logistic_head(x[~held], y[~held]), x[held]))
    np.savez(tmp / HEAD, **_logistic_head(x, y))  # type: ignore[arg-type]
    card.update(
        {
            "encoder": encoder,
            "features": list(ALIGNED_INPUT),
            "head": {
                "input": list(ALIGNED_INPUT),
                "hidden": 0,
                "fitted_on": f"the calibration part, cross-fitted in {ALIGN_FOLDS} folds (the encoder never saw it)",
            },
        }
    )
    (tmp / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    AlignedVerifier(tmp)  # the folder opens as it will be served (card and head agree)
    return scores


def _calibration_json(cal: Calibration) -> dict[str, Any]:
    data = asdict(cal)
    if not cal.serves:
        data["threshold"] = None
    return data


def train_cache_verifier(
    pairs_file: Path,
    name: str,
    home: Path,
    recipe: VerifierRecipe | None = None,
    *,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train, calibrate and save a verifier under `<home>/verifiers/NAME/`; returns its card.

    `embedder` replaces the packaged encoder when the encoder stays frozen (`recipe.epochs == 0`); the card
    then names it, and a cache whose embedder has that name reuses its vectors.

    Raises:
        InputError: a bad name, recipe or pairs file, or too few pairs of either label.
    """
    recipe = recipe or VerifierRecipe()
    recipe.check()
    check_name(name, "verifier")  # a plain name: '..' would make the folder replaced below the home itself
    t0 = time.perf_counter()
    pairs = load_pairs(pairs_file, limit=recipe.max_pairs)
    train, calib = split_pairs(pairs, [1 - recipe.calib_fraction, recipe.calib_fraction], seed=recipe.seed)
    for part, label in ((train, "training"), (calib, "calibration")):
        ys = {p.label for p in part}
        if ys != {0, 1}:
            raise InputError(f"the {label} part has labels {sorted(ys)}; give more pairs with both 0 and 1")
    folder = verifiers_dir(home) / name
    tmp = folder.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    card: dict[str, Any] = {
        "format": FORMAT,
        "kind": recipe.kind,
        "name": name,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pairs_file": str(Path(pairs_file).expanduser().resolve()),
        "pairs_sha256": file_sha256(pairs_file),
        "pairs_used": {"train": len(train), "calibration": len(calib)},
        "split": "connected components of normalised questions (no question on both sides); exact repeats dropped",
        "recipe": asdict(recipe),
    }
    ca, cb, cy = _texts(calib)
    if recipe.kind == "aligned":
        scores = _train_aligned(train, calib, tmp, card, recipe, progress)
    else:
        if recipe.kind == "cross":
            verifier: CacheVerifier | CrossVerifier = _train_cross(train, tmp, card, recipe, progress)
        else:
            verifier = _train_head(train, tmp, card, recipe, embedder, progress)
        if progress is not None:
            progress("calibrate", 0, len(calib))
        scores = verifier.score(ca, cb)
    cal = choose_threshold(scores, cy, target_precision=recipe.target_precision, confidence=recipe.confidence)
    card["threshold"] = cal.threshold if cal.serves else None
    card["calibration"] = _calibration_json(cal)
    card["train_seconds"] = round(time.perf_counter() - t0, 1)
    (tmp / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log.info(
        "trained cache verifier %s in %.0fs: threshold %s", name, card["train_seconds"], card["threshold"]
    )
    return card


def calibrate_verifier(
    folder: Path,
    pairs_file: Path,
    *,
    target_precision: float,
    confidence: float = 0.95,
    limit: int | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Re-choose a verifier's threshold on (other) labeled pairs and write it into its card; returns the card."""
    verifier = open_verifier(folder, embedder=embedder)
    pairs = load_pairs(pairs_file, limit=limit)
    a, b, y = _texts(pairs)
    cal = choose_threshold(verifier.score(a, b), y, target_precision=target_precision, confidence=confidence)
    card = dict(verifier.card)
    history = list(card.get("calibration_history", []))
    if "calibration" in card:
        history.append({"threshold": card.get("threshold"), **card["calibration"]})
    card["calibration_history"] = history
    card["threshold"] = cal.threshold if cal.serves else None
    card["calibration"] = {
        **_calibration_json(cal),
        "pairs_file": str(Path(pairs_file).expanduser().resolve()),
        "calibrated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (Path(folder) / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return card
