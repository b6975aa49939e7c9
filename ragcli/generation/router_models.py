"""The learned router's per-tier success models, as plain numpy: no scikit-learn needed at query time.

Each model maps (embeddings, dense features) to P(tier's answer is good), one column per tier. Training
(`ragcli.train.router_training`) fits them with scikit-learn and exports their weights; a saved router is a JSON
spec plus one `.npz` of arrays, so loading it never unpickles code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ragcli.errors import ConfigError

FloatMatrix = npt.NDArray[np.float32]
Arrays = dict[str, npt.NDArray[Any]]


class TierModel(Protocol):
    """Predicts, per prompt and tier, the chance the tier's answer is good."""

    kind: str

    def predict(self, emb: FloatMatrix, dense: FloatMatrix) -> FloatMatrix: ...

    def export(self, prefix: str) -> tuple[dict[str, Any], Arrays]:
        """A JSON spec and the arrays that `load_model` rebuilds this model from."""
        ...


def _sigmoid(x: npt.NDArray[Any]) -> FloatMatrix:
    out: FloatMatrix = (1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))).astype(np.float32)
    return out


@dataclass
class LogisticModel:
    """One logistic regression per tier on the embedding and dense features."""

    coef: FloatMatrix
    """(features, tiers)."""
    intercept: FloatMatrix
    kind: str = "logreg"

    def predict(self, emb: FloatMatrix, dense: FloatMatrix) -> FloatMatrix:
        return _sigmoid(np.hstack([emb, dense]) @ self.coef + self.intercept)

    def export(self, prefix: str) -> tuple[dict[str, Any], Arrays]:
        return {"kind": self.kind}, {f"{prefix}coef": self.coef, f"{prefix}intercept": self.intercept}


@dataclass
class MLPModel:
    """A small multi-label perceptron (ReLU hidden layers, one sigmoid output per tier)."""

    weights: list[FloatMatrix]
    biases: list[FloatMatrix]
    kind: str = "mlp"

    def predict(self, emb: FloatMatrix, dense: FloatMatrix) -> FloatMatrix:
        h: npt.NDArray[Any] = np.hstack([emb, dense])
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return _sigmoid(h)

    def export(self, prefix: str) -> tuple[dict[str, Any], Arrays]:
        arrays: Arrays = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            arrays[f"{prefix}w{i}"] = w
            arrays[f"{prefix}b{i}"] = b
        return {"kind": self.kind, "layers": len(self.weights)}, arrays


@dataclass
class KnnModel:
    """The labels of the k most similar training prompts (cosine on the embedding), shrunk to the tier's mean."""

    train_emb: FloatMatrix
    train_labels: FloatMatrix
    """(train prompts, tiers); a tier not tried on a prompt holds that tier's mean."""
    k: int = 25
    shrink: float = 5.0
    """Pseudo-neighbours at the tier's mean: keeps a few unlucky neighbours from deciding alone."""
    kind: str = "knn"

    def predict(self, emb: FloatMatrix, dense: FloatMatrix) -> FloatMatrix:
        prior = self.train_labels.mean(axis=0)
        k = min(self.k, self.train_emb.shape[0])
        out = np.empty((emb.shape[0], self.train_labels.shape[1]), dtype=np.float32)
        for start in range(0, emb.shape[0], 1024):
            sims = emb[start : start + 1024] @ self.train_emb.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            summed = self.train_labels[top].sum(axis=1)
            out[start : start + 1024] = (summed + self.shrink * prior) / (k + self.shrink)
        return out

    def export(self, prefix: str) -> tuple[dict[str, Any], Arrays]:
        spec = {"kind": self.kind, "k": self.k, "shrink": self.shrink}
        return spec, {f"{prefix}emb": self.train_emb.astype(np.float16), f"{prefix}labels": self.train_labels}


@dataclass
class PriorModel:
    """Each subject's (else benchmark's) mean label on the training part, shrunk to the overall mean.

    Reads the one-hot subject and benchmark columns of the dense features: `onehot_start` is where they begin,
    `n_subjects` how many of them are subjects (the benchmarks follow).
    """

    table: FloatMatrix
    """(subjects + benchmarks, tiers)."""
    overall: FloatMatrix
    onehot_start: int
    n_subjects: int
    kind: str = "prior"

    def predict(self, emb: FloatMatrix, dense: FloatMatrix) -> FloatMatrix:
        onehot = dense[:, self.onehot_start :]
        subj, bench = onehot[:, : self.n_subjects], onehot[:, self.n_subjects :]
        out = np.tile(self.overall, (dense.shape[0], 1)).astype(np.float32)
        has_bench = bench.sum(axis=1) > 0
        if bench.shape[1]:
            out[has_bench] = bench[has_bench] @ self.table[self.n_subjects :]
        has_subj = subj.sum(axis=1) > 0
        if subj.shape[1]:
            out[has_subj] = subj[has_subj] @ self.table[: self.n_subjects]
        return out

    def export(self, prefix: str) -> tuple[dict[str, Any], Arrays]:
        spec = {"kind": self.kind, "onehot_start": self.onehot_start, "n_subjects": self.n_subjects}
        return spec, {f"{prefix}table": self.table, f"{prefix}overall": self.overall}


@dataclass
class BlendModel:
    """A weighted mean of other models' probabilities."""

    parts: list[TierModel]
    weights: list[float]
    kind: str = "blend"

    def predict(self, emb: FloatMatrix, dense: FloatMatrix) -> FloatMatrix:
        total = sum(self.weights)
        acc = sum(w * m.predict(emb, dense) for w, m in zip(self.weights, self.parts, strict=True))
        return np.asarray(acc, dtype=np.float32) / np.float32(total)

    def export(self, prefix: str) -> tuple[dict[str, Any], Arrays]:
        specs: list[dict[str, Any]] = []
        arrays: Arrays = {}
        for i, part in enumerate(self.parts):
            spec, arr = part.export(f"{prefix}p{i}_")
            specs.append(spec)
            arrays.update(arr)
        return {"kind": self.kind, "weights": self.weights, "parts": specs}, arrays


def load_model(
    spec: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]], prefix: str = ""
) -> TierModel:
    """Rebuild a model from its exported spec and arrays."""

    def get(name: str) -> npt.NDArray[Any]:
        if prefix + name not in arrays:
            raise ConfigError(
                f"router weights lack array {prefix + name!r}: the router folder is damaged; retrain it"
            )
        return arrays[prefix + name]

    kind = spec.get("kind")
    if kind == "logreg":
        return LogisticModel(get("coef").astype(np.float32), get("intercept").astype(np.float32))
    if kind == "mlp":
        layers = int(spec["layers"])
        return MLPModel(
            [get(f"w{i}").astype(np.float32) for i in range(layers)],
            [get(f"b{i}").astype(np.float32) for i in range(layers)],
        )
    if kind == "knn":
        return KnnModel(
            get("emb").astype(np.float32),
            get("labels").astype(np.float32),
            int(spec["k"]),
            float(spec["shrink"]),
        )
    if kind == "prior":
        return PriorModel(
            get("table").astype(np.float32),
            get("overall").astype(np.float32),
            int(spec["onehot_start"]),
            int(spec["n_subjects"]),
        )
    if kind == "blend":
        parts: Sequence[Mapping[str, Any]] = spec["parts"]
        return BlendModel(
            [load_model(p, arrays, f"{prefix}p{i}_") for i, p in enumerate(parts)],
            [float(w) for w in spec["weights"]],
        )
    raise ConfigError(f"unknown router model kind {kind!r}; known: logreg, mlp, knn, prior, blend")
