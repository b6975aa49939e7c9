"""A router trained on the user's own labels: per tier, the chance its answer is good; the cheapest tier that
clears a threshold answers.

A saved router is a folder `<home>/routers/NAME/` holding `card.json` (when it was trained, on which labels, the
tiers and their prices at the time, the features, the model spec, the rule and its threshold) and `weights.npz`
(the model's arrays and the held-out calibration set's predictions and labels, so a new `router.target` is
calibrated again at load time without retraining). A router trained with an LM view (`--lm-layer N`) also keeps
the view's layer, scale and standardisation, and runs the local LM over each prompt it routes.

The rule: a tier's *deficit* is how far its predicted success falls below a reference: the best tier's prediction
(`gap`, the default: "how much do we lose by asking the cheaper tier") or 1 (`absolute`). The cheapest tier whose
deficit is at most the threshold answers; when none does, the last (strongest) tier does.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ragcli.errors import ConfigError, InputError, ResourceMissing
from ragcli.generation.lm_vectors import LMFeatures, LMVectorizer, PromptVectorizer
from ragcli.generation.router_features import RouterFeatures
from ragcli.generation.router_models import TierModel, load_model

if TYPE_CHECKING:
    from ragcli.ingest.protocols import Embedder

log = logging.getLogger(__name__)

Rule = Literal["gap", "absolute"]
FloatMatrix = npt.NDArray[np.float32]
CARD = "card.json"
WEIGHTS = "weights.npz"


def routers_dir(home: Path) -> Path:
    return home / "routers"


def router_names(home: Path) -> list[str]:
    folder = routers_dir(home)
    return sorted(p.name for p in folder.iterdir() if (p / CARD).is_file()) if folder.is_dir() else []


def deficits(probs: npt.NDArray[Any], rule: Rule) -> npt.NDArray[np.float64]:
    """Per prompt and tier, how far the predicted success falls below the reference of the rule."""
    p = np.asarray(probs, dtype=np.float64)
    ref = p.max(axis=1, keepdims=True) if rule == "gap" else np.ones((p.shape[0], 1))
    return np.asarray(ref - p, dtype=np.float64)


def choose_tiers(probs: npt.NDArray[Any], threshold: float, rule: Rule) -> npt.NDArray[np.int64]:
    """The tier index each prompt goes to: the cheapest whose deficit is at most `threshold`, else the last."""
    d = deficits(probs, rule)
    ok = d[:, :-1] <= threshold
    first = np.argmax(ok, axis=1)
    out: npt.NDArray[np.int64] = np.where(ok.any(axis=1), first, d.shape[1] - 1).astype(np.int64)
    return out


def threshold_for_share(probs: npt.NDArray[Any], rule: Rule, share: float) -> float:
    """The threshold that sends `share` of the prompts past the cheapest tier (as near as ties allow)."""
    if not 0.0 <= share <= 1.0:
        raise InputError(f"a target share of non-cheapest calls must lie in [0, 1], got {share}")
    d0 = np.sort(deficits(probs, rule)[:, 0])[::-1]
    n = d0.size
    k = round(share * n)
    if k <= 0:
        return float(d0[0]) + 1e-9
    if k >= n:
        return float(d0[-1]) - 1e-9
    # between the k-th and (k+1)-th largest deficit: exactly k prompts lie above it
    return float((d0[k - 1] + d0[k]) / 2.0)


def threshold_for_quality(
    probs: npt.NDArray[Any], labels: npt.NDArray[Any], rule: Rule, floor: float, tier_cost: Sequence[float]
) -> float:
    """The cheapest threshold whose quality on labelled prompts reaches `floor` x the strongest tier's quality."""
    if not 0.0 < floor <= 1.5:
        raise InputError(
            f"a quality floor is a fraction of the strongest tier's quality (e.g. 0.95), got {floor}"
        )
    lab = np.asarray(labels, dtype=np.float64)
    keep = ~np.isnan(lab).any(axis=1)
    if not keep.any():
        raise InputError("no calibration prompt has a label for every tier: cannot calibrate a quality floor")
    p, lab = np.asarray(probs)[keep], lab[keep]
    goal = floor * lab[:, -1].mean()
    cost = np.asarray(tier_cost, dtype=np.float64)
    candidates = np.unique(np.concatenate([deficits(p, rule).ravel(), [-1.0, 2.0]]))
    best: tuple[float, float] | None = None
    for t in candidates:
        tiers = choose_tiers(p, float(t), rule)
        quality = lab[np.arange(len(tiers)), tiers].mean()
        if quality >= goal - 1e-12:
            spend = float(cost[tiers].mean())
            if best is None or spend < best[0] - 1e-12:
                best = (spend, float(t))
    return best[1] if best is not None else -1.0


@dataclass(frozen=True)
class RouteChoice:
    """Which tier a prompt goes to, and why."""

    tier: int
    tier_name: str
    probs: tuple[float, ...]
    """Predicted chance of a good answer, per tier."""
    deficit: float
    """The cheapest tier's deficit under the rule; above the threshold means it was passed over."""
    threshold: float
    rule: Rule


class LearnedRouter:
    """A trained router loaded from its folder.

    Args:
        folder: `<home>/routers/NAME`.
        embedder: The embedder to use (default: the one named on the card, the packaged MiniLM); its dimension
            must match the card's.
        target: Recalibrate the threshold to `{"strong_share": x}` or `{"quality_floor": y}` on the stored
            held-out predictions; default: the threshold saved at training.
        lm_vectorizer: What computes the LM view's raw vectors, for a router trained with one (default: the
            local LM the card names, loaded on the first prompt).
    """

    def __init__(
        self,
        folder: Path,
        *,
        embedder: Embedder | None = None,
        target: Mapping[str, float] | None = None,
        lm_vectorizer: PromptVectorizer | None = None,
    ) -> None:
        card_path = folder / CARD
        if not card_path.is_file():
            raise ResourceMissing(
                f"no trained router in {folder}; train one with `ragcli train router --outcomes FILE --name NAME`"
            )
        self.folder = folder
        self.card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
        with np.load(folder / WEIGHTS) as npz:
            arrays = {k: npz[k] for k in npz.files}
        self.model: TierModel = load_model(self.card["model"], arrays, "m_")
        self.features = RouterFeatures.from_json(self.card["features"])
        self.rule: Rule = self.card.get("rule", "gap")
        self.tiers: list[str] = [t["name"] for t in self.card["tiers"]]
        self._calib_probs = arrays.get("calib_probs")
        self._calib_labels = arrays.get("calib_labels")
        self._embedder = embedder
        lm_card = self.card.get("lm")
        self.lm: LMFeatures | None = LMFeatures.from_card(lm_card, arrays) if lm_card else None
        self._lm_vectorizer = lm_vectorizer
        self._lock = threading.Lock()  # the gateway routes from many threads: load each model once
        self.threshold = float(self.card["threshold"])
        if target:
            self.threshold = self.calibrate(target)

    @classmethod
    def load(cls, name: str, home: Path, **kwargs: Any) -> LearnedRouter:
        """Load `<home>/routers/NAME` (or a folder path given as NAME)."""
        folder = Path(name).expanduser()
        if not (folder / CARD).is_file():
            folder = routers_dir(home) / name
        if not (folder / CARD).is_file():
            known = ", ".join(router_names(home)) or "none"
            raise ResourceMissing(
                f"no trained router named {name!r} in {routers_dir(home)} (trained: {known}); "
                "train one with `ragcli train router --outcomes FILE --name NAME`"
            )
        return cls(folder, **kwargs)

    def tier_cost(self) -> list[float]:
        """Relative per-query cost of each tier, from the card (prices at training time)."""
        costs = [t.get("usd_per_query") for t in self.card["tiers"]]
        if all(isinstance(c, int | float) for c in costs):
            return [float(c) for c in costs]
        return [10.0**i for i in range(len(costs))]

    def calibrate(self, target: Mapping[str, float]) -> float:
        """A threshold for a target strong share or quality floor, from the stored held-out predictions."""
        if self._calib_probs is None or self._calib_labels is None:
            raise ConfigError(
                f"router {self.folder.name!r} holds no calibration set; retrain it to set router.target"
            )
        if set(target) == {"strong_share"}:
            return threshold_for_share(self._calib_probs, self.rule, float(target["strong_share"]))
        if set(target) == {"quality_floor"}:
            return threshold_for_quality(
                self._calib_probs,
                self._calib_labels,
                self.rule,
                float(target["quality_floor"]),
                self.tier_cost(),
            )
        raise ConfigError(
            f"router.target must be {{strong_share: x}} or {{quality_floor: y}}, got {dict(target)}"
        )

    def share_embedder(self, embedder: Embedder) -> bool:
        """Use an already loaded embedder when it is the model this router was trained on; True if taken."""
        if self._embedder is None and embedder.model_name == self.card["embedder"]["model"]:
            self._embedder = embedder
            return True
        return False

    def _embed(self, prompts: Sequence[str]) -> FloatMatrix:
        with self._lock:
            if self._embedder is None:
                from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

                self._embedder = SentenceTransformerEmbedder(self.card["embedder"]["model"])
        vectors = self._embedder.embed(list(prompts)).vectors
        want = int(self.card["embedder"]["dim"])
        if vectors.shape[1] != want:
            raise ConfigError(
                f"router {self.folder.name!r} was trained on {want}-d embeddings of "
                f"{self.card['embedder']['model']!r}, got {vectors.shape[1]}-d from {self._embedder.model_name!r}"
            )
        return np.asarray(vectors, dtype=np.float32)

    def _lm_view(self, emb: FloatMatrix, prompts: Sequence[str], raw: FloatMatrix | None) -> FloatMatrix:
        """`emb` with the LM view appended, for a router trained with one."""
        if self.lm is None:
            return emb
        if raw is None:
            with self._lock:
                if self._lm_vectorizer is None:
                    self._lm_vectorizer = LMVectorizer(self.lm.spec)
            raw = self._lm_vectorizer.vectors(prompts)
        return self.lm.apply(emb, raw)

    def predict(
        self,
        prompts: Sequence[str],
        subjects: Sequence[str] | None = None,
        benchmarks: Sequence[str] | None = None,
        embeddings: FloatMatrix | None = None,
        lm_vectors: FloatMatrix | None = None,
    ) -> FloatMatrix:
        """P(good answer) per prompt and tier, shape (prompts, tiers). `embeddings` and `lm_vectors` are the
        prompts' precomputed embedding and raw LM view (default: computed here)."""
        if not prompts:
            return np.zeros((0, len(self.tiers)), dtype=np.float32)
        n = len(prompts)
        subj = list(subjects) if subjects is not None else [""] * n
        bench = list(benchmarks) if benchmarks is not None else [""] * n
        emb = self._embed(prompts) if embeddings is None else embeddings
        emb = self._lm_view(emb, prompts, lm_vectors)
        return self.model.predict(emb, self.features.dense(prompts, subj, bench))

    def need_scores(self, probs: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """The cheapest tier's deficit: the order in which prompts leave the cheapest tier (for APGR)."""
        return deficits(probs, self.rule)[:, 0]

    def route(self, prompt: str, subject: str = "", benchmark: str = "") -> RouteChoice:
        """The tier one prompt goes to, with the scores that decided it."""
        probs = self.predict([prompt], [subject], [benchmark])
        tier = int(choose_tiers(probs, self.threshold, self.rule)[0])
        return RouteChoice(
            tier=tier,
            tier_name=self.tiers[tier],
            probs=tuple(float(x) for x in probs[0]),
            deficit=float(self.need_scores(probs)[0]),
            threshold=self.threshold,
            rule=self.rule,
        )
