"""The learned router's inputs: the packaged encoder's embedding of a prompt beside a few cheap features.

Cheap features say what an embedding of a short text misses: how long the prompt is, how many numbers and
math symbols it holds (multi-step arithmetic is where weak models fail), whether it is multiple choice, and the
subject and benchmark when the caller knows them (one-hot over the values seen in training; unseen ones map to
none). Training and inference build features with this one class, so they cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ragcli.errors import InputError

FloatMatrix = npt.NDArray[np.float32]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_MATH = re.compile(r"[+\-*/=^%$×÷√∑∫<>]")
_CHOICE = re.compile(r"^\s*[A-H][.)]\s", re.MULTILINE)
_SENTENCE = re.compile(r"[.!?](?:\s|$)")

CHEAP_NAMES = (
    "log_chars",
    "log_words",
    "log_numbers",
    "digit_ratio",
    "log_math_symbols",
    "choices",
    "log_sentences",
    "log_longest_number",
    "questions",
)


def cheap_features(prompt: str) -> list[float]:
    """Length, numbers and symbols of one prompt, in the order of `CHEAP_NAMES`."""
    chars = len(prompt)
    numbers = _NUMBER.findall(prompt)
    digits = sum(c.isdigit() for c in prompt)
    return [
        math.log1p(chars),
        math.log1p(len(prompt.split())),
        math.log1p(len(numbers)),
        digits / chars if chars else 0.0,
        math.log1p(len(_MATH.findall(prompt))),
        1.0 if len(_CHOICE.findall(prompt)) >= 2 else 0.0,
        math.log1p(len(_SENTENCE.findall(prompt))),
        math.log1p(max((len(n) for n in numbers), default=0)),
        float(prompt.count("?")),
    ]


@dataclass
class RouterFeatures:
    """Turns prompts (with their embeddings, subjects and benchmarks) into one feature matrix.

    Args:
        subjects: The subject vocabulary seen in training (one-hot columns, in this order).
        benchmarks: The benchmark vocabulary seen in training.
        mean: Per cheap feature, the training mean (standardisation); computed by `fit` when None.
        std: Per cheap feature, the training standard deviation.
    """

    subjects: list[str]
    benchmarks: list[str]
    mean: list[float] | None = None
    std: list[float] | None = None

    @classmethod
    def fit(
        cls, prompts: Sequence[str], subjects: Sequence[str], benchmarks: Sequence[str]
    ) -> RouterFeatures:
        """Learn the vocabularies and the standardisation from the training prompts."""
        if not prompts:
            raise InputError("cannot fit router features on no prompts")
        cheap = np.asarray([cheap_features(p) for p in prompts], dtype=np.float64)
        std = cheap.std(axis=0)
        return cls(
            subjects=sorted({s for s in subjects if s}),
            benchmarks=sorted({b for b in benchmarks if b}),
            mean=cheap.mean(axis=0).tolist(),
            std=np.where(std > 1e-9, std, 1.0).tolist(),
        )

    @property
    def dense_names(self) -> list[str]:
        return [
            *CHEAP_NAMES,
            *(f"subject={s}" for s in self.subjects),
            *(f"benchmark={b}" for b in self.benchmarks),
        ]

    def dense(
        self, prompts: Sequence[str], subjects: Sequence[str], benchmarks: Sequence[str]
    ) -> FloatMatrix:
        """Cheap features (standardised) and the one-hot subject and benchmark: one row per prompt."""
        if not (len(prompts) == len(subjects) == len(benchmarks)):
            raise InputError(
                f"prompts, subjects and benchmarks differ in length: {len(prompts)}, {len(subjects)}, "
                f"{len(benchmarks)}"
            )
        if self.mean is None or self.std is None:
            raise InputError("router features are not fitted: build them with RouterFeatures.fit")
        cheap = (np.asarray([cheap_features(p) for p in prompts], dtype=np.float64) - self.mean) / self.std
        subj = _one_hot(subjects, self.subjects)
        bench = _one_hot(benchmarks, self.benchmarks)
        return np.hstack([cheap.reshape(len(prompts), -1), subj, bench]).astype(np.float32)

    def full(
        self,
        embeddings: FloatMatrix,
        prompts: Sequence[str],
        subjects: Sequence[str],
        benchmarks: Sequence[str],
    ) -> FloatMatrix:
        """The embedding followed by the dense features."""
        if embeddings.shape[0] != len(prompts):
            raise InputError(f"{embeddings.shape[0]} embeddings for {len(prompts)} prompts")
        return np.hstack([embeddings.astype(np.float32), self.dense(prompts, subjects, benchmarks)])

    def to_json(self) -> dict[str, Any]:
        return {"subjects": self.subjects, "benchmarks": self.benchmarks, "mean": self.mean, "std": self.std}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouterFeatures:
        return cls(
            subjects=list(data["subjects"]),
            benchmarks=list(data["benchmarks"]),
            mean=list(data["mean"]),
            std=list(data["std"]),
        )


def _one_hot(values: Sequence[str], vocab: Sequence[str]) -> npt.NDArray[np.float64]:
    index = {v: i for i, v in enumerate(vocab)}
    out = np.zeros((len(values), len(vocab)), dtype=np.float64)
    for row, v in enumerate(values):
        col = index.get(v)
        if col is not None:
            out[row, col] = 1.0
    return out
