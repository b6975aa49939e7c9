"""The answer cache's verifier: a score of how surely two questions ask the same thing, and its threshold.

A verifier is a folder `<home>/verifiers/NAME/` written by `ragcli train cache-verifier`, with `card.json`:
when and on what it was trained, its kind, the threshold calibrated to meet `cache.target_precision` and the
held-out precision with its interval. Four kinds (`open_verifier` reads the card and returns the right one):

- `cosine` (`CosineVerifier`; what `ragcli train cache-verifier` trains by default): the cosine of the two
  questions' vectors by the encoder alone, with `encoder/` when it was fine-tuned on the pairs. No head to
  overfit: on QQP it is the one kind whose threshold calibrates (at precision 0.90, held-out precision 0.907 and
  hit rate 0.241 with the encoder fine-tuned for an epoch), where the head over the same encoder reaches 0.08 at
  best (benchmarks/results/cache.md, 2026-12-04).
- `aligned` (`AlignedVerifier`): a logistic regression over the cosine, how well each token of one question
  matches a token of the other (`ragcli.generation.token_alignment`) and the pair features, with `encoder/` when
  the encoder was fine-tuned. The regression is fitted on pairs the encoder never saw. On two QQP splits, with the
  encoder fine-tuned for an epoch, it is more precise than that encoder's cosine in the middle of the curve (0.905-
  0.916 against 0.886-0.894 at hit rate 0.30) but not at its top (precision 0.95); benchmarks/results/cache.md,
  2026-12-05. It reads
  the tokens of the question and of each candidate: one forward pass of the encoder per lookup (26-32 ms p50 on
  2 cores for four candidates).
- `head` (`CacheVerifier`; a card without a kind is one): `head.npz`, a small network over `[u * v, |u - v|,
  cosine, pair features]` of the two questions' sentence embeddings, with `encoder/` when the encoder was
  fine-tuned; otherwise the cache's own query vectors are reused. Numpy inference, well under a millisecond.
- `cross` (`CrossVerifier`): a cross-encoder in `model/` that reads both questions together, as a reranker reads
  a query and a passage; the score is the sigmoid of its logit averaged over both orders. One small forward pass
  per candidate. Worth it with a strong duplicate-question cross-encoder as its base; a MiniLM fine-tuned here
  on 8,000 QQP pairs was below MiniLM cosine (benchmarks/results/cache.md).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragcli.errors import InputError, ResourceMissing
from ragcli.generation.pair_features import FEATURE_NAMES, pair_feature_matrix
from ragcli.generation.token_alignment import ALIGNED_INPUT, TokenEncoder
from ragcli.ingest.protocols import Embedder

if TYPE_CHECKING:
    from ragcli.retrieval.cross_encoder_backends import PairScorer

log = logging.getLogger(__name__)

CARD = "card.json"
HEAD = "head.npz"
MODEL = "model"
"""The cross-encoder's folder inside a `cross` verifier."""
FORMAT = 1


def verifiers_dir(home: Path) -> Path:
    """Where trained verifiers live: `<home>/verifiers`."""
    return Path(home).expanduser() / "verifiers"


def verifier_names(home: Path) -> list[str]:
    """The trained verifiers under a home, oldest first (by the card's `trained_at`)."""
    found = []
    root = verifiers_dir(home)
    if root.is_dir():
        for card in root.glob(f"*/{CARD}"):
            try:
                when = str(json.loads(card.read_text(encoding="utf-8")).get("trained_at", ""))
            except (OSError, ValueError):
                continue
            found.append((when, card.parent.name))
    return [name for _, name in sorted(found)]


def resolve_verifier(home: Path, name: str | None) -> Path:
    """The folder of verifier `name`, or of the one trained last when `name` is None.

    Raises:
        ResourceMissing: there is no such verifier (or none at all).
    """
    names = verifier_names(home)
    if name is None:
        if not names:
            raise ResourceMissing(
                f"no cache verifier is trained under {verifiers_dir(home)}; train one with "
                "`ragcli train cache-verifier --pairs PAIRS.jsonl --name NAME`"
            )
        name = names[-1]
    folder = verifiers_dir(home) / name
    if not (folder / CARD).is_file():
        known = ", ".join(names) or "none"
        raise ResourceMissing(
            f"cache verifier {name!r} not found under {verifiers_dir(home)} (trained: {known}); "
            "train it with `ragcli train cache-verifier --pairs PAIRS.jsonl --name NAME`"
        )
    return folder


def pair_matrix(
    a_vecs: np.ndarray, b_vecs: np.ndarray, a_texts: Sequence[str], b_texts: Sequence[str]
) -> np.ndarray:
    """The head's input for each pair: `[u * v, |u - v|, cosine, pair features]` (float32)."""
    u = np.asarray(a_vecs, dtype=np.float32)
    v = np.asarray(b_vecs, dtype=np.float32)
    if u.shape != v.shape or u.ndim != 2 or len(u) != len(a_texts) or len(a_texts) != len(b_texts):
        raise InputError(
            f"verifier input mismatch: {u.shape} and {v.shape} vectors for {len(a_texts)} and {len(b_texts)} "
            "texts; give one vector per text, the same number on both sides"
        )
    cos = np.sum(u * v, axis=1, keepdims=True)
    feats = np.asarray(pair_feature_matrix(a_texts, b_texts), dtype=np.float32).reshape(len(u), -1)
    return np.hstack([u * v, np.abs(u - v), cos, feats]).astype(np.float32)


def head_logits(head: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Run the stored head (`mean`, `std`, then `W0, b0, W1, b1, ...` with ReLU between) on `x`."""
    h = (x - head["mean"]) / head["std"]
    n = sum(1 for k in head if k.startswith("W"))
    for i in range(n):
        h = h @ head[f"W{i}"] + head[f"b{i}"]
        if i < n - 1:
            h = np.maximum(h, 0.0)
    return np.asarray(h, dtype=np.float64).reshape(-1)


def _read_card(folder: Path) -> dict[str, Any]:
    card_path = folder / CARD
    if not card_path.is_file():
        raise ResourceMissing(
            f"{folder} is not a cache verifier (no {CARD}); train one with "
            "`ragcli train cache-verifier --pairs PAIRS.jsonl --name NAME`"
        )
    try:
        card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResourceMissing(f"cannot read the cache verifier at {folder}: {exc}; retrain it") from exc
    if card.get("format") != FORMAT:
        raise ResourceMissing(
            f"the cache verifier at {folder} was written by another version of ragcli "
            f"(format {card.get('format')!r}); retrain it"
        )
    return card


def _read_head(folder: Path, card: dict[str, Any], features: Sequence[str]) -> dict[str, np.ndarray]:
    """The head's arrays in `folder`, checked against the input columns this version computes."""
    if not (folder / HEAD).is_file():
        raise ResourceMissing(
            f"{folder} is not a cache verifier (needs {CARD} and {HEAD}); train one with "
            "`ragcli train cache-verifier --pairs PAIRS.jsonl --name NAME`"
        )
    try:
        with np.load(folder / HEAD) as data:
            head = {k: np.asarray(data[k], dtype=np.float32) for k in data.files}
    except (OSError, ValueError) as exc:
        raise ResourceMissing(f"cannot read the cache verifier at {folder}: {exc}; retrain it") from exc
    if tuple(card.get("features", ())) != tuple(features):
        raise ResourceMissing(
            f"the cache verifier at {folder} was written by another version of ragcli "
            f"(features {card.get('features')!r}); retrain it"
        )
    return head


def probabilities(logits: np.ndarray) -> np.ndarray:
    """The sigmoid of logits (clipped), float64."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50))), dtype=np.float64)


def open_verifier(
    folder: Path, *, embedder: Embedder | None = None
) -> CacheVerifier | CrossVerifier | AlignedVerifier:
    """The verifier in `folder`, of the kind its card names (`head` when the card predates kinds)."""
    folder = Path(folder).expanduser()
    card = _read_card(folder)
    kind = card.get("kind", "head")
    if kind == "cosine":
        return CosineVerifier(folder, embedder=embedder, card=card)
    if kind == "cross":
        return CrossVerifier(folder, card=card)
    if kind == "aligned":
        return AlignedVerifier(folder, card=card)
    if kind == "head":
        return CacheVerifier(folder, embedder=embedder, card=card)
    raise ResourceMissing(f"the cache verifier at {folder} is of unknown kind {kind!r}; retrain it")


class _Calibrated:
    """What every verifier kind shares: its folder, card, name and calibrated threshold."""

    def __init__(self, folder: Path, card: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder).expanduser()
        self.card: dict[str, Any] = card if card is not None else _read_card(self.folder)

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.folder.name))

    @property
    def threshold(self) -> float:
        """The calibrated threshold; `inf` when calibration found none that meets the target."""
        value = self.card.get("threshold")
        return math.inf if value is None else float(value)

    @property
    def encoder(self) -> str:
        """The encoder's name: the packaged model's name, or the path of the fine-tuned one."""
        enc = str(self.card.get("encoder", ""))
        return str(self.folder / enc) if (self.folder / enc).is_dir() and enc else enc

    def score(self, a_texts: Sequence[str], b_texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def same(self, a: str, b: str) -> bool:
        """Whether one pair clears the calibrated threshold."""
        return bool(self.score([a], [b])[0] >= self.threshold)


class _ReadsTexts(_Calibrated):
    """A kind that reads the two texts itself: the cache's vectors are not its input."""

    def reuses(self, embedder_name: str) -> bool:
        """Always: the verifier reads the texts, so no vectors of its own are needed."""
        return True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 0), dtype=np.float32)

    def score_vectors(
        self, a_texts: Sequence[str], b_texts: Sequence[str], a_vecs: np.ndarray, b_vecs: np.ndarray
    ) -> np.ndarray:
        return self.score(a_texts, b_texts)


class CrossVerifier(_ReadsTexts):
    """Scores (question_a, question_b) with a cross-encoder that reads both; see the module docstring.

    Args:
        folder: A `cross` verifier folder (`card.json` and `model/`).
    """

    def __init__(self, folder: Path, *, card: dict[str, Any] | None = None) -> None:
        super().__init__(folder, card)
        if not (self.folder / MODEL).is_dir():
            raise ResourceMissing(f"the cache verifier at {self.folder} has no {MODEL}/ folder; retrain it")
        self._max_length = int(self.card.get("recipe", {}).get("max_seq_len", 64))
        self._pairs: PairScorer | None = None

    def score(self, a_texts: Sequence[str], b_texts: Sequence[str]) -> np.ndarray:
        """Probabilities that `a_texts[i]` and `b_texts[i]` ask the same thing (both orders, averaged)."""
        if len(a_texts) != len(b_texts):
            raise InputError(f"got {len(a_texts)} first and {len(b_texts)} second questions; pair them up")
        if len(a_texts) == 0:
            return np.zeros(0, dtype=np.float64)
        if self._pairs is None:
            from ragcli.retrieval.cross_encoder_backends import load_pair_scorer

            # a private copy: the folder may be retrained under the same name in this process
            _, self._pairs = load_pair_scorer(
                str(self.folder / MODEL), "torch", self._max_length, batch_size=64, shared=False
            )
        ab = np.asarray(self._pairs(a_texts, b_texts), dtype=np.float64)
        ba = np.asarray(self._pairs(b_texts, a_texts), dtype=np.float64)
        return probabilities((ab + ba) / 2)


class AlignedVerifier(_ReadsTexts):
    """Scores (question_a, question_b) by a logistic regression over their cosine, their tokens' alignment and the
    pair features; see the module docstring.

    Args:
        folder: An `aligned` verifier folder (`card.json`, `head.npz`, and `encoder/` when it was fine-tuned).
    """

    def __init__(self, folder: Path, *, card: dict[str, Any] | None = None) -> None:
        super().__init__(folder, card)
        self._head = _read_head(self.folder, self.card, ALIGNED_INPUT)
        max_len = int(self.card.get("recipe", {}).get("max_seq_len", 64))
        self.tokens = TokenEncoder(self.encoder, max_seq_len=max_len)

    def score(self, a_texts: Sequence[str], b_texts: Sequence[str]) -> np.ndarray:
        """Probabilities that `a_texts[i]` and `b_texts[i]` ask the same thing."""
        if len(a_texts) != len(b_texts):
            raise InputError(f"got {len(a_texts)} first and {len(b_texts)} second questions; pair them up")
        if len(a_texts) == 0:
            return np.zeros(0, dtype=np.float64)
        return probabilities(head_logits(self._head, self.tokens.pair_inputs(a_texts, b_texts)))


class CacheVerifier(_Calibrated):
    """Scores (question_a, question_b) -> probability that they ask the same thing.

    Args:
        folder: A verifier folder (see the module docstring); `resolve_verifier` finds one by name.
        embedder: An embedder to reuse when it is the verifier's encoder (the packaged MiniLM); otherwise the
            verifier loads its own encoder on first use.
    """

    def __init__(
        self, folder: Path, *, embedder: Embedder | None = None, card: dict[str, Any] | None = None
    ) -> None:
        super().__init__(folder, card)
        self._head = self._load_head()
        self._given = embedder
        self._own: Embedder | None = None

    def _load_head(self) -> dict[str, np.ndarray]:
        return _read_head(self.folder, self.card, FEATURE_NAMES)

    def reuses(self, embedder_name: str) -> bool:
        """Whether vectors made by an embedder of this name are the verifier's own (no second embedding)."""
        return embedder_name == self.encoder

    def embedder(self) -> Embedder:
        """The verifier's encoder: the given embedder when it is the same model, else its own (lazy)."""
        if self._given is not None and self.reuses(self._given.model_name):
            return self._given
        if self._own is None:
            from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

            self._own = SentenceTransformerEmbedder(self.encoder)
        return self._own

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.embedder().embed(list(texts)).vectors, dtype=np.float32)

    def score_vectors(
        self, a_texts: Sequence[str], b_texts: Sequence[str], a_vecs: np.ndarray, b_vecs: np.ndarray
    ) -> np.ndarray:
        """Probabilities for pairs whose vectors (from `embed`) are already known."""
        if len(a_texts) == 0:
            return np.zeros(0, dtype=np.float64)
        return probabilities(head_logits(self._head, pair_matrix(a_vecs, b_vecs, a_texts, b_texts)))

    def score(self, a_texts: Sequence[str], b_texts: Sequence[str]) -> np.ndarray:
        """Probabilities that `a_texts[i]` and `b_texts[i]` ask the same thing (embeds both sides)."""
        if len(a_texts) != len(b_texts):
            raise InputError(f"got {len(a_texts)} first and {len(b_texts)} second questions; pair them up")
        unique = list(dict.fromkeys([*a_texts, *b_texts]))
        vecs = self.embed(unique)
        row = {t: i for i, t in enumerate(unique)}
        a_v = vecs[[row[t] for t in a_texts]]
        b_v = vecs[[row[t] for t in b_texts]]
        return self.score_vectors(a_texts, b_texts, a_v, b_v)


class CosineVerifier(CacheVerifier):
    """The cosine of the two questions' vectors by the verifier's encoder (packaged, or fine-tuned on the pairs),
    with a calibrated threshold: no head on top."""

    def _load_head(self) -> dict[str, np.ndarray]:
        return {}

    def score_vectors(
        self, a_texts: Sequence[str], b_texts: Sequence[str], a_vecs: np.ndarray, b_vecs: np.ndarray
    ) -> np.ndarray:
        """Cosines for pairs whose vectors (from `embed`) are already known."""
        u = np.asarray(a_vecs, dtype=np.float64)
        v = np.asarray(b_vecs, dtype=np.float64)
        if u.shape != v.shape or len(u) != len(a_texts) or len(a_texts) != len(b_texts):
            raise InputError(
                f"verifier input mismatch: {u.shape} and {v.shape} vectors for {len(a_texts)} and "
                f"{len(b_texts)} texts; give one vector per text, the same number on both sides"
            )
        if len(u) == 0:
            return np.zeros(0, dtype=np.float64)
        norms = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
        return np.asarray(np.sum(u * v, axis=1) / np.maximum(norms, 1e-12), dtype=np.float64)
