"""Fusing a dense and a sparse ranking: reciprocal rank fusion, and a fusion learned from the user's labels.

RRF (the store's hybrid search) uses ranks only: a document the dense model finds with cosine 0.91 and one at
0.62 count the same when they sit at the same rank. `LearnedFusion` keeps RRF's candidates but re-orders the top
`depth` with a logistic regression over what the two searches already returned: each side's score, its rank, the
RRF rank, and each score relative to the query's other candidates (gap to the best, z-score). So it costs two
searches instead of one and a dot product: no model runs at query time.

A fusion trained with `--sentences` also reads `SENTENCE_FEATURES`: the cosine between the question and each
candidate's best sentence and its first line (`ragcli.retrieval.sentence_vectors`). Those need the candidates'
sentence vectors: embedded by the collection's embedder at ingest (under a config that names such a fusion) or the
first time a chunk is a candidate, then kept.

It is trained by `ragcli train fusion` (`ragcli.train.fusion_training`) and saved as one JSON card under
`<home>/fusions/NAME/`; a config uses it with `retrieval: {mode: hybrid, fusion: trained:NAME}`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.errors import ResourceMissing
from ragcli.trained_models import PACKAGED_PREFIX, CardModel
from ragcli.types import Hit

if TYPE_CHECKING:
    from ragcli.retrieval.sentence_vectors import SentenceVectors

Ranked = list[tuple[str, float]]
"""(id, score), best first."""

FORMAT = "ragcli-fusion/1"
RETRAIN = "retrain it with `ragcli train fusion`"
CARD = "ragcli_fusion.json"
"""The one file of a fusion model: weights and card together."""
FEATURES = (
    "dense_score",
    "bm25_score",
    "dense_rrf",
    "bm25_rrf",
    "fused_rank_inv",
    "dense_gap",
    "dense_z",
    "bm25_gap",
    "bm25_z",
)
"""What the model reads per candidate, in this order (the card stores it; a card with another list is refused)."""
SENTENCE_FEATURES = ("sentence_max", "sentence_first", "sentence_max_gap", "sentence_first_gap")
"""What a fusion trained with sentences reads after `FEATURES`: the cosine of the question with the candidate's
best sentence and with its first line (a title, a heading), and each one's gap to the query's best candidate."""


def rrf(rankings: Sequence[Ranked], *, k: int = 60, limit: int = 100) -> Ranked:
    """Reciprocal rank fusion: score = sum over rankings of 1 / (k + rank), rank from 1."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (doc, _) in enumerate(ranking, 1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda x: -x[1])[:limit]


def _side(ranking: Ranked, prefetch: int) -> tuple[dict[str, tuple[int, float]], int, float]:
    """id -> (0-based rank, score); the rank and score given to a candidate this side did not return.

    A full list (as long as the prefetch) stopped at its last score, so a missing candidate scores at most that;
    a shorter one returned every match (BM25 leaves out documents sharing no term), so a missing one scores 0.
    """
    pos = {d: (i, s) for i, (d, s) in enumerate(ranking)}
    floor = ranking[-1][1] if ranking and len(ranking) >= prefetch else 0.0
    return pos, len(ranking), floor


def candidate_features(
    dense: Ranked, sparse: Ranked, head: Sequence[str], *, rrf_k: int, prefetch: int, sentences: Any = None
) -> Any:
    """The `FEATURES` of each id of `head` (RRF's top candidates, in RRF order): an array (len(head), 9).

    `sentences`, an array (len(head), 2) of `SentenceVectors.scores`, adds the 4 `SENTENCE_FEATURES`."""
    import numpy as np

    dpos, dmiss, dfloor = _side(dense, prefetch)
    spos, smiss, sfloor = _side(sparse, prefetch)
    rows = []
    for i, d in enumerate(head):
        di, ds = dpos.get(d, (dmiss, dfloor))
        si, ss = spos.get(d, (smiss, sfloor))
        rows.append([ds, ss, 1.0 / (rrf_k + di + 1), 1.0 / (rrf_k + si + 1), 1.0 / (i + 1)])
    x = np.asarray(rows, dtype=np.float64).reshape(len(head), 5)
    extra = []
    for col in (x[:, 0], x[:, 1]):
        if len(col):
            extra += [col - col.max(), (col - col.mean()) / (col.std() + 1e-6)]
        else:
            extra += [col, col]
    if sentences is not None and len(head):
        sv = np.asarray(sentences, dtype=np.float64).reshape(len(head), 2)
        extra += [sv[:, 0], sv[:, 1], sv[:, 0] - sv[:, 0].max(), sv[:, 1] - sv[:, 1].max()]
    width = len(FEATURES) + (len(SENTENCE_FEATURES) if sentences is not None else 0)
    return np.hstack([x, np.stack(extra, axis=1)]) if len(head) else np.zeros((0, width))


SentenceScores = Callable[[Sequence[str]], Any]
"""Candidate ids -> an array (len(ids), 2): each one's best-sentence and first-line cosine with the question."""


@dataclass
class LearnedFusion(CardModel):
    """A logistic regression over `FEATURES` (standardised with `mean` and `scale`) that re-orders RRF's top."""

    name: str
    weights: list[float]
    bias: float
    mean: list[float]
    scale: list[float]
    depth: int = 20
    """How many of RRF's top candidates are re-ordered (the tail keeps RRF's order, below them)."""
    prefetch: int = 100
    """Hits each of the dense and the sparse search returns (training ranked with the same depth)."""
    rrf_k: int = 60
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    format: str = FORMAT
    card: dict[str, Any] = field(default_factory=dict)
    """The card's other keys: what it was trained on, when, and its deployment gate's verdict (`gate`)."""

    @property
    def model_name(self) -> str:
        return f"fusion:{self.name}"

    @property
    def uses_sentences(self) -> bool:
        """Whether the model reads `SENTENCE_FEATURES` (trained with `--sentences`)."""
        return len(self.features) > len(FEATURES)

    def probabilities(self, x: Any) -> Any:
        """The model's chance that each candidate (a row of `candidate_features`) is relevant."""
        import numpy as np

        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))

    def fuse(
        self, dense: Ranked, sparse: Ranked, limit: int, sentence_scores: SentenceScores | None = None
    ) -> Ranked:
        """RRF of the two rankings with its top `depth` re-ordered by the model; (id, score), best first.

        The head's score is the model's probability; the tail keeps RRF's order with scores scaled from RRF's
        to stay below the head's lowest, so a score cut-off downstream still reads a falling list.
        `sentence_scores` gives a model that `uses_sentences` its candidates' sentence cosines.
        """
        fused = rrf([dense, sparse], k=self.rrf_k, limit=max(limit, self.depth))
        head = fused[: self.depth]
        if not head:
            return []
        ids = [d for d, _ in head]
        sentences = None
        if self.uses_sentences:
            if sentence_scores is None:
                raise ValueError(f"{self.model_name} reads sentence features: pass sentence_scores")
            sentences = sentence_scores(ids)
        p = self.probabilities(
            candidate_features(
                dense, sparse, ids, rrf_k=self.rrf_k, prefetch=self.prefetch, sentences=sentences
            )
        )
        order = sorted(range(len(head)), key=lambda i: -float(p[i]))  # stable: ties keep RRF's order
        out: Ranked = [(head[i][0], float(p[i])) for i in order]
        if len(fused) > len(head):
            low, edge = out[-1][1], head[-1][1]
            out += [(d, low * s / edge if edge > 0 else 0.0) for d, s in fused[len(head) :]]
        return out[:limit]

    def fuse_hits(
        self,
        dense: Sequence[Hit],
        sparse: Sequence[Hit],
        limit: int,
        *,
        query_vector: Any = None,
        sentences: SentenceVectors | None = None,
    ) -> list[Hit]:
        """`fuse` over store hits (by chunk id): what the query path calls with the two searches' results.

        A model that `uses_sentences` needs the question's vector and the `SentenceVectors` of the collection's
        embedder."""
        by_id: dict[str, Hit] = {}
        for h in (*dense, *sparse):
            by_id.setdefault(h.chunk.id, h)
        scores: SentenceScores | None = None
        if self.uses_sentences:
            if sentences is None or query_vector is None:
                raise ValueError(
                    f"{self.model_name} reads sentence features: pass query_vector and sentences"
                )
            vectors = sentences

            def scores(ids: Sequence[str]) -> Any:
                return vectors.scores(query_vector, [by_id[d].chunk.text for d in ids])

        ranked = self.fuse(
            [(h.chunk.id, h.score) for h in dense], [(h.chunk.id, h.score) for h in sparse], limit, scores
        )
        return [Hit(by_id[d].chunk, s) for d, s in ranked]

    def save(self, folder: Path) -> Path:
        return self.save_card(folder, CARD)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> LearnedFusion:
        known = (*FEATURES, *SENTENCE_FEATURES) if len(data.get("features", ())) > len(FEATURES) else FEATURES
        fields = cls.checked_fields(data, where, what="fusion model", fmt=FORMAT, features=known, fix=RETRAIN)
        model = cls(**fields)
        n = len(known)
        if not (len(model.weights) == len(model.mean) == len(model.scale) == n) or not all(
            math.isfinite(v) for v in (*model.weights, *model.mean, *model.scale, model.bias)
        ):
            raise ResourceMissing(f"{where} holds a damaged fusion model; {RETRAIN}")
        return model


PACKAGED_DIR = Path(__file__).resolve().parent / "fusions"
"""Fusions that ship inside ragcli (`packaged:NAME`): `minilm-scifact`, the `local` preset's."""


def load_fusion(spec: str, home: Path | None = None) -> LearnedFusion:
    """The fusion model a config names: `packaged:NAME` (inside ragcli), `trained:NAME` (under
    `<home>/fusions`), or a folder or card file.

    A model that failed its deployment gate still loads, with a warning: the config asked for it.

    Raises:
        ResourceMissing: nothing readable there, naming the command that makes one.
    """
    from ragcli.trained_models import model_folder, read_card_json, trained_dir, warn_if_gated_out

    folder = model_folder(spec, "fusions", PACKAGED_DIR, home)
    if spec.startswith(PACKAGED_PREFIX) and not (folder / CARD).is_file():
        have = sorted(p.parent.name for p in PACKAGED_DIR.glob(f"*/{CARD}"))
        raise ResourceMissing(
            f"no packaged fusion {spec!r} (packaged: {', '.join(PACKAGED_PREFIX + h for h in have)}); "
            "use one of those, trained:NAME, or rrf"
        )
    path = folder / CARD
    if not path.is_file():
        have = sorted(p.parent.name for p in trained_dir("fusions", home).glob(f"*/{CARD}"))
        raise ResourceMissing(
            f"fusion model {spec!r} not found at {str(path)!r} (trained fusions: {', '.join(have) or 'none yet'}); "
            "train one with `ragcli train fusion --corpus C --queries Q --qrels R --name NAME`, or set "
            "retrieval.fusion: rrf"
        )
    model = LearnedFusion.from_json(read_card_json(path, RETRAIN), repr(str(path)))
    warn_if_gated_out(spec, folder, "fusions")
    return model
