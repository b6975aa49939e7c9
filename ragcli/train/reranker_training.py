"""Fine-tune a cross-encoder reranker from a local encoder on the user's own labeled pairs.

No trained cross-encoder ships offline, so ragcli trains one: the packaged all-MiniLM-L6-v2 encoder (or any
local encoder folder) gets a one-logit head and learns, with binary cross-entropy, whether a passage answers a
query. Labeled data comes as JSONL pairs (`{"query", "passage", "label"}`) or as BEIR qrels with their corpus
and queries; negatives are mined from the user's own index (the passages it ranks high that are not labeled
relevant: exactly the mistakes a reranker must fix). The model is saved under `<home>/rerankers/<name>`,
where a config names it `model: trained:<name>`; it loads with sentence-transformers `CrossEncoder` and
with FlagEmbedding's `FlagReranker`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragcli.errors import InputError
from ragcli.retrieval.rerank_selection import similarity, word_set
from ragcli.retrieval.reranker_models import rerankers_dir
from ragcli.train.cross_encoder_training import Pair, fine_tune_cross_encoder
from ragcli.trained_models import check_name
from ragcli.types import Hit

log = logging.getLogger(__name__)

CARD = "ragcli_reranker.json"
"""The training card saved beside the model: what it was trained on and how."""


@dataclass
class TrainingReport:
    name: str
    path: str
    base_model: str
    pairs: int
    positives: int
    negatives: int
    negatives_source: str
    epochs: int
    max_length: int
    batch_size: int
    learning_rate: float
    positive_weight: float
    seconds: float
    final_loss: float
    data: dict[str, Any] = field(default_factory=dict)


Searcher = Callable[[str, int], Sequence[Hit]]
"""Searches the user's index: (query, k) -> hits (used to mine hard negatives)."""


def load_pairs_jsonl(path: Path) -> list[Pair]:
    """Read `{"query", "passage", "label"}` lines; label 1/true means relevant, 0/false not."""
    if not path.is_file():
        raise InputError(f"pairs file {str(path)!r} does not exist; give a JSONL file of query/passage/label")
    pairs: list[Pair] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                label = row["label"]
                if isinstance(label, bool):
                    label = float(label)
                if not isinstance(label, int | float) or not 0 <= label <= 1:
                    raise ValueError(f"label must be 0, 1 (or a number between), got {label!r}")
                query, passage = str(row["query"]).strip(), str(row["passage"]).strip()
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{path}:{n}: expected a JSON object with query, passage and label (0 or 1): {exc}"
                ) from None
            if query and passage:
                pairs.append(Pair(query, passage, float(label)))
    if not any(p.label > 0.5 for p in pairs):
        raise InputError(
            f"{path}: no positive pairs (label 1); a reranker needs relevant examples to learn from"
        )
    return pairs


def mine_negatives(
    positives: dict[str, list[tuple[str, str]]],
    searcher: Searcher,
    *,
    per_query: int,
    depth: int = 20,
) -> list[Pair]:
    """Hard negatives: for each query, the top-ranked passages of the index that are not among its positives.

    Args:
        positives: query text -> [(doc_id, passage text)] labeled relevant.
        searcher: Searches the user's index.
        per_query: Negatives to keep per query.
        depth: How many hits to look at per query.
    """
    out: list[Pair] = []
    for query, pos in positives.items():
        pos_ids = {doc_id for doc_id, _ in pos if doc_id}
        pos_words = [word_set(text) for _, text in pos]
        taken = 0
        for hit in searcher(query, depth):
            if taken >= per_query:
                break
            if hit.chunk.doc_id in pos_ids:
                continue
            words = word_set(hit.chunk.text)
            # an unlabeled copy of a positive passage is not a negative
            if any(similarity(words, w) >= 0.9 for w in pos_words):
                continue
            out.append(Pair(query, hit.chunk.text, 0.0))
            taken += 1
    return out


def random_negatives(
    positives: dict[str, list[tuple[str, str]]],
    pool: Sequence[tuple[str, str]],
    *,
    per_query: int,
    seed: int = 0,
) -> list[Pair]:
    """Negatives drawn at random from `pool` [(doc_id, text)]: the fallback when there is no index to mine."""
    rng = random.Random(seed)
    out: list[Pair] = []
    for query, pos in positives.items():
        pos_ids = {doc_id for doc_id, _ in pos}
        candidates = [p for p in rng.sample(list(pool), min(len(pool), per_query * 3)) if p[0] not in pos_ids]
        out.extend(Pair(query, text, 0.0) for _, text in candidates[:per_query])
    return out


def _positives_of(pairs: Iterable[Pair]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for p in pairs:
        if p.label > 0.5:
            out.setdefault(p.query, []).append(("", p.passage))
    return out


def build_training_pairs(
    labeled: Sequence[Pair],
    *,
    searcher: Searcher | None,
    negatives_per_query: int,
    doc_ids: dict[tuple[str, str], str] | None = None,
    pool: Sequence[tuple[str, str]] = (),
    seed: int = 0,
) -> tuple[list[Pair], str]:
    """The labeled pairs plus mined (or, with no index, random) negatives, and where the negatives came from."""
    positives = _positives_of(labeled)
    if doc_ids:
        positives = {q: [(doc_ids.get((q, t), ""), t) for _, t in pos] for q, pos in positives.items()}
    if negatives_per_query <= 0:
        return list(labeled), "labeled only"
    if searcher is not None:
        mined = mine_negatives(positives, searcher, per_query=negatives_per_query)
        source = "mined from the index"
    elif pool:
        mined = random_negatives(positives, pool, per_query=negatives_per_query, seed=seed)
        source = "random from the corpus (no index to mine)"
    else:
        return list(labeled), "labeled only"
    return [*labeled, *mined], source


def train_reranker(
    pairs: Sequence[Pair],
    *,
    name: str,
    base_model: str | None = None,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    max_length: int = 256,
    home: Path | None = None,
    seed: int = 0,
    negatives_source: str = "labeled only",
    data: dict[str, Any] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    positive_weight: float | None = None,
) -> TrainingReport:
    """Fine-tune a cross-encoder on `pairs` and save it as `trained:<name>`.

    Args:
        pairs: Labeled pairs (label 1 relevant, 0 not).
        name: The reranker's name (folder under `<home>/rerankers`).
        base_model: A local encoder folder or hub id; default the packaged all-MiniLM-L6-v2.
        epochs, batch_size, learning_rate, max_length: Training settings.
        home: ragcli home; default `$RAGCLI_HOME`.
        seed: Shuffling and initialisation seed.
        negatives_source: Recorded in the training card.
        data: What the pairs came from, recorded in the training card.
        on_step: Called with (step, total steps, loss) after each batch.
        positive_weight: Weight of a positive pair in the binary loss; default negatives / positives, so the
            two classes weigh the same (with 3-4 negatives per positive an unweighted loss learns the base rate).
    """
    check_name(name, "reranker")  # a plain name: it becomes a folder under the home
    if not pairs:
        raise InputError("no training pairs; give --pairs FILE or --corpus/--queries/--qrels")
    from ragcli.resources import embedding_model_dir

    base = base_model or str(embedding_model_dir())
    t0 = time.perf_counter()
    rows = list(pairs)
    n_pos = sum(1 for p in rows if p.label > 0.5)
    if positive_weight is None:
        positive_weight = (len(rows) - n_pos) / n_pos if n_pos else 1.0
    path = rerankers_dir(home) / name
    from ragcli.retrieval.cross_encoder_backends import DERIVED_FILES

    for derived in DERIVED_FILES:  # exported or quantized from the weights this training replaces
        (path / derived).unlink(missing_ok=True)
    recent = fine_tune_cross_encoder(
        rows,
        path,
        base=base,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_length=max_length,
        seed=seed,
        positive_weight=positive_weight,
        on_step=on_step,
    )
    positives = sum(1 for p in rows if p.label > 0.5)
    report = TrainingReport(
        name=name,
        path=str(path),
        base_model=base,
        pairs=len(rows),
        positives=positives,
        negatives=len(rows) - positives,
        negatives_source=negatives_source,
        epochs=epochs,
        max_length=max_length,
        batch_size=batch_size,
        learning_rate=learning_rate,
        positive_weight=round(float(positive_weight), 3),
        seconds=round(time.perf_counter() - t0, 2),
        final_loss=round(recent, 4),
        data=dict(data or {}),
    )
    card = {**asdict(report), "trained_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (path / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
    log.info("trained reranker %s on %d pairs in %.1fs (loss %.4f)", name, len(rows), report.seconds, recent)
    return report
