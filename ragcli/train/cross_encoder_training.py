"""Fine-tune a cross-encoder (one logit over a text pair) from a local encoder: the reranker's and the cache
verifier's shared training loop.

The result is a plain sequence-classification model (not a sentence-transformers module chain) saved with its
tokenizer, so that sentence-transformers' `CrossEncoder`, FlagEmbedding's `FlagReranker` and ragcli's
`load_pair_scorer` all load it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli.errors import ConfigError, InputError
from ragcli.train.optim import StepHook, Trainer


@dataclass(frozen=True)
class Pair:
    """One labeled pair: `query` and `passage` (or two questions), label 1 relevant / same, 0 not."""

    query: str
    passage: str
    label: float


def _load_pair_model(base: str, **kwargs: object) -> tuple[object, object]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(base)
        model = AutoModelForSequenceClassification.from_pretrained(base, **kwargs)
    except Exception as exc:
        raise InputError(
            f"could not load {base!r} as a cross-encoder: {exc}; give a local model folder or a hub id "
            "that is cached here"
        ) from exc
    return tok, model


def copy_cross_encoder(base: str, out: Path, *, max_length: int) -> None:
    """Save the one-logit cross-encoder `base` (a folder or hub id) to `out`, as it is.

    Raises:
        InputError: `base` cannot be loaded, or it gives more than one logit (a classifier, not a scorer).
    """
    tok, model = _load_pair_model(base)
    labels = int(getattr(getattr(model, "config", None), "num_labels", 1))
    if labels != 1:
        raise InputError(
            f"{base!r} has {labels} output labels; a verifier needs a one-logit cross-encoder "
            "(or train one: epochs >= 1)"
        )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))  # type: ignore[attr-defined]
    tok.model_max_length = max_length  # type: ignore[attr-defined]
    tok.save_pretrained(str(out))  # type: ignore[attr-defined]


def fine_tune_cross_encoder(
    pairs: Sequence[Pair],
    out: Path,
    *,
    base: str,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    max_length: int = 256,
    seed: int = 0,
    positive_weight: float = 1.0,
    on_step: StepHook | None = None,
) -> float:
    """Train `base` with a one-logit head on `pairs` (binary cross-entropy), save it to `out`; the final loss.

    Raises:
        ConfigError: invalid training settings.
        InputError: no pairs, or `base` cannot be loaded.
    """
    if epochs < 1 or batch_size < 1 or not 0 < learning_rate < 1 or max_length < 16:
        raise ConfigError(
            f"invalid training settings: epochs={epochs}, batch_size={batch_size}, "
            f"learning_rate={learning_rate}, max_length={max_length}"
        )
    if not pairs:
        raise InputError("no training pairs to fine-tune a cross-encoder on")
    import torch

    torch.manual_seed(seed)
    tok_, model_ = _load_pair_model(base, num_labels=1)
    tok: Any = tok_
    model: Any = model_
    rows = list(pairs)
    random.Random(seed).shuffle(rows)
    steps = epochs * ((len(rows) + batch_size - 1) // batch_size)
    trainer = Trainer(model, steps=steps, learning_rate=learning_rate, on_step=on_step)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(float(positive_weight)))
    model.train()
    for epoch in range(epochs):
        if epoch:
            random.Random(seed + epoch).shuffle(rows)
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            enc = tok(
                [p.query for p in batch],
                [p.passage for p in batch],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits = model(**enc).logits.view(-1)
            trainer.step(loss_fn(logits, torch.tensor([p.label for p in batch], dtype=torch.float32)))
    model.eval()
    for stale in out.glob("*.onnx"):
        stale.unlink()  # an exported copy of the previous weights
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.model_max_length = max_length
    tok.save_pretrained(str(out))
    return trainer.loss
