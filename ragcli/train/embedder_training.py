"""Contrastive fine-tuning of the packaged embedder on the user's (query, relevant passage) pairs.

The loss is MultipleNegativesRankingLoss: in a batch of B pairs, each query must score its own passage above
the other B - 1 passages (cross-entropy over scaled cosine similarities). The other passages are free
negatives, so no index is needed to mine them, and the model keeps its bi-encoder shape: vectors are still
computed once at ingest and searched by the store, so a query costs nothing more. A batch never holds the same
query or passage twice (a second positive of the same query would be taught as a negative).

The model is saved as a sentence-transformers folder under `<home>/embedders/<name>` with a card
(`ragcli_embedder.json`); a config names it `embedder: {type: sentence_transformers, model: trained:<name>}`.
Vectors of the new model are not comparable with the old: collections must be re-embedded (`ragcli ingest`
does it incrementally: the ingest fingerprint holds the embedder's version).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragcli.errors import ConfigError, InputError
from ragcli.train.cross_encoder_training import Pair
from ragcli.train.optim import Trainer
from ragcli.trained_models import CARDS, check_name, trained_dir

log = logging.getLogger(__name__)

CARD = CARDS["embedders"]


@dataclass
class EmbedderTrainingReport:
    name: str
    path: str
    base_model: str
    pairs: int
    queries: int
    epochs: int
    batch_size: int
    learning_rate: float
    max_length: int
    scale: float
    seconds: float
    final_loss: float
    weights_sha: str
    data: dict[str, Any] = field(default_factory=dict)


def contrastive_batches(pairs: Sequence[Pair], batch_size: int, seed: int) -> list[list[Pair]]:
    """Positive pairs shuffled into batches in which no query and no passage appears twice."""
    rows = [p for p in pairs if p.label > 0.5]
    random.Random(seed).shuffle(rows)
    batches: list[list[Pair]] = []
    open_: list[tuple[list[Pair], set[str]]] = []
    for p in rows:
        for batch, seen in open_:
            if len(batch) < batch_size and p.query not in seen and p.passage not in seen:
                batch.append(p)
                seen.update((p.query, p.passage))
                break
        else:
            open_.append(([p], {p.query, p.passage}))
        full = [b for b in open_ if len(b[0]) >= batch_size]
        batches.extend(b for b, _ in full)
        open_ = [b for b in open_ if len(b[0]) < batch_size]
    batches.extend(b for b, _ in open_ if len(b) > 1)
    return batches


def weights_sha(path: Path) -> str:
    """sha256 (first 16 hex) of the model's weight files: the version a re-index is keyed on."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def train_embedder(
    pairs: Sequence[Pair],
    *,
    name: str,
    base_model: str | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    max_length: int = 256,
    scale: float = 20.0,
    home: Path | None = None,
    seed: int = 0,
    data: dict[str, Any] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> EmbedderTrainingReport:
    """Fine-tune a sentence-transformers embedder on positive pairs and save it as `trained:<name>`.

    Args:
        pairs: Labeled pairs; those with label 1 are the (query, passage) positives, the rest are ignored (the
            other passages of each batch are the negatives).
        name: The embedder's name (folder under `<home>/embedders`).
        base_model: A sentence-transformers folder or hub id; default the packaged all-MiniLM-L6-v2.
        epochs, batch_size, learning_rate, max_length: Training settings (batch size is also the number of
            negatives each query sees, plus one).
        scale: Inverse temperature of the cosine similarities (20 as in sentence-transformers).
        home: ragcli home; default `$RAGCLI_HOME`.
        seed: Shuffling and initialisation seed.
        data: What the pairs came from, recorded in the card.
        on_step: Called with (step, total steps, loss) after each batch.
    """
    check_name(name, "embedder")  # a plain name: it becomes a folder under the home
    if epochs < 1 or batch_size < 2 or not 0 < learning_rate < 1 or max_length < 16 or scale <= 0:
        raise ConfigError(
            f"invalid training settings: epochs={epochs}, batch_size={batch_size} (>= 2), "
            f"learning_rate={learning_rate}, max_length={max_length}, scale={scale}"
        )
    positives = [p for p in pairs if p.label > 0.5]
    if len(positives) < 2:
        raise InputError(
            f"{len(positives)} positive pair(s); contrastive training needs at least 2 (query, relevant passage) "
            "pairs: give --pairs FILE or --corpus/--queries/--qrels"
        )
    import torch
    from sentence_transformers import SentenceTransformer

    from ragcli.resources import embedding_model_dir

    base = base_model or str(embedding_model_dir())
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    try:
        model = SentenceTransformer(base, device="cpu")
    except Exception as exc:
        raise InputError(f"could not load the base embedder {base!r} to train from: {exc}") from exc
    model.max_seq_length = max_length
    plan = [contrastive_batches(positives, batch_size, seed + e) for e in range(epochs)]
    steps = sum(len(b) for b in plan)
    if steps == 0:
        raise InputError("no batch of 2 or more distinct pairs could be formed; give more labeled queries")
    trainer = Trainer(model, steps=steps, learning_rate=learning_rate, on_step=on_step)
    model.train()
    for batches in plan:
        for batch in batches:
            q = _encode(model, [p.query for p in batch])
            d = _encode(model, [p.passage for p in batch])
            logits = scale * q @ d.T
            trainer.step(torch.nn.functional.cross_entropy(logits, torch.arange(len(batch))))
    model.eval()
    path = trained_dir("embedders", home) / name
    path.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    report = EmbedderTrainingReport(
        name=name,
        path=str(path),
        base_model=base,
        pairs=len(positives),
        queries=len({p.query for p in positives}),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_length=max_length,
        scale=scale,
        seconds=round(time.perf_counter() - t0, 2),
        final_loss=round(trainer.loss, 4),
        weights_sha=weights_sha(path),
        data=dict(data or {}),
    )
    card = {**asdict(report), "trained_at": datetime.now(UTC).isoformat(timespec="seconds"), "reindex": True}
    (path / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    log.info(
        "trained embedder %s on %d pairs in %.1fs (loss %.4f)",
        name,
        len(positives),
        report.seconds,
        trainer.loss,
    )
    return report


def _encode(model: Any, texts: list[str]) -> Any:
    import torch

    # sentence-transformers 6 renamed tokenize() to preprocess(); older releases only have tokenize()
    prep = model.preprocess if hasattr(model, "preprocess") else model.tokenize
    features = prep(texts)
    emb = model(features)["sentence_embedding"]
    return torch.nn.functional.normalize(emb, dim=-1)
