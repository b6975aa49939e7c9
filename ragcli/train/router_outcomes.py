"""Router training labels: which tier answered each prompt well, read from a JSONL file.

Two line formats are accepted:

- ragcli's own, for any number of tiers (a label is good/bad, true/false, 1/0, or a score in [0, 1]):
  `{"prompt": "...", "subject": "...", "benchmark": "...", "outcomes": {"TIER": true, ...},
  "cost": {"TIER": 0.0012, ...}}` (`subject`, `benchmark` and `cost` optional);
- RouteLLM's released outcomes: `{"benchmark", "subject", "prompt", "weak_model", "strong_model",
  "weak_correct", "strong_correct"}`: two tiers, weak first.

Tiers are ordered cheapest first: the order given by the caller, else the order of first appearance (RouteLLM:
weak, then strong).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragcli.errors import InputError

_GOOD = {"good", "true", "yes", "correct", "1"}
_BAD = {"bad", "false", "no", "wrong", "incorrect", "0"}


@dataclass
class Outcomes:
    """Labels per prompt and tier. `labels[i, t]` is in [0, 1]; NaN where tier t was not tried on prompt i."""

    prompts: list[str]
    tiers: list[str]
    labels: npt.NDArray[np.float64]
    subjects: list[str]
    benchmarks: list[str]
    costs: npt.NDArray[np.float64] | None = None
    source: str = ""
    format: str = "ragcli"
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: Sequence[int] | npt.NDArray[np.int64]) -> Outcomes:
        ix = np.asarray(idx, dtype=np.int64)
        return Outcomes(
            prompts=[self.prompts[i] for i in ix],
            tiers=list(self.tiers),
            labels=self.labels[ix],
            subjects=[self.subjects[i] for i in ix],
            benchmarks=[self.benchmarks[i] for i in ix],
            costs=None if self.costs is None else self.costs[ix],
            source=self.source,
            format=self.format,
        )

    @property
    def groups(self) -> list[str]:
        """Subject where known, else the benchmark: the unit of the per-subject prior."""
        return [s or b or "-" for s, b in zip(self.subjects, self.benchmarks, strict=True)]


def _label(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        if not 0.0 <= float(value) <= 1.0:
            raise InputError(f"{where}: a score must lie in [0, 1], got {value}")
        return float(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _GOOD:
            return 1.0
        if v in _BAD:
            return 0.0
    if isinstance(value, dict) and "good" in value:
        return _label(value["good"], where)
    raise InputError(
        f"{where}: a label must be good/bad, true/false, 1/0 or a score in [0, 1], got {value!r}"
    )


def read_outcomes(path: Path, tiers: Sequence[str] | None = None) -> Outcomes:
    """Read an outcomes file; raise `InputError` naming the line of the first bad record."""
    if not path.is_file():
        raise InputError(f"outcomes file {str(path)!r} does not exist; give a JSONL file of routing outcomes")
    rows: list[dict[str, float]] = []
    cost_rows: list[dict[str, float]] = []
    prompts: list[str] = []
    subjects: list[str] = []
    benchmarks: list[str] = []
    seen: list[str] = []
    fmt = "ragcli"
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str):
                raise InputError(f"{where}: each line must be an object with a string `prompt`")
            labels: dict[str, float] = {}
            costs: dict[str, float] = {}
            if "outcomes" in rec:
                if not isinstance(rec["outcomes"], dict) or not rec["outcomes"]:
                    raise InputError(f"{where}: `outcomes` must map tier names to labels")
                for tier, value in rec["outcomes"].items():
                    labels[str(tier)] = _label(value, f"{where} tier {tier!r}")
                for tier, value in (rec.get("cost") or {}).items():
                    costs[str(tier)] = float(value)
            elif {"weak_model", "strong_model", "weak_correct", "strong_correct"} <= rec.keys():
                fmt = "routellm"
                labels[str(rec["weak_model"])] = _label(rec["weak_correct"], where)
                labels[str(rec["strong_model"])] = _label(rec["strong_correct"], where)
            else:
                raise InputError(
                    f"{where}: no labels; give `outcomes: {{TIER: good|bad|score}}` or RouteLLM's "
                    "weak_model/strong_model/weak_correct/strong_correct"
                )
            for tier in labels:
                if tier not in seen:
                    seen.append(tier)
            rows.append(labels)
            cost_rows.append(costs)
            prompts.append(rec["prompt"])
            subjects.append(str(rec.get("subject") or ""))
            benchmarks.append(str(rec.get("benchmark") or ""))
    if not prompts:
        raise InputError(f"outcomes file {str(path)!r} holds no records")
    order = list(tiers) if tiers else seen
    unknown = [t for t in seen if t not in order]
    if unknown:
        raise InputError(
            f"tiers {unknown} appear in {path} but not in the tier list {order}; add them or drop them"
        )
    if len(order) < 2:
        raise InputError(f"a router needs at least two tiers, {path} names {order}")
    labels_arr = np.full((len(prompts), len(order)), np.nan)
    costs_arr = np.full((len(prompts), len(order)), np.nan)
    for i, (row, crow) in enumerate(zip(rows, cost_rows, strict=True)):
        for j, tier in enumerate(order):
            if tier in row:
                labels_arr[i, j] = row[tier]
            if tier in crow:
                costs_arr[i, j] = crow[tier]
    return Outcomes(
        prompts=prompts,
        tiers=order,
        labels=labels_arr,
        subjects=subjects,
        benchmarks=benchmarks,
        costs=None if np.isnan(costs_arr).all() else costs_arr,
        source=str(path),
        format=fmt,
    )


def split_indices(
    outcomes: Outcomes, fractions: Sequence[float], seed: int = 0
) -> list[npt.NDArray[np.int64]]:
    """Split prompt indices into parts of the given fractions, stratified by benchmark (and shuffled)."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise InputError(f"split fractions must add up to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fractions]
    by_bench: dict[str, list[int]] = {}
    for i, b in enumerate(outcomes.benchmarks):
        by_bench.setdefault(b, []).append(i)
    for idx in by_bench.values():
        arr = np.asarray(idx)
        rng.shuffle(arr)
        bounds = np.round(np.cumsum([0.0, *fractions]) * len(arr)).astype(int)
        for k in range(len(fractions)):
            parts[k].extend(arr[bounds[k] : bounds[k + 1]].tolist())
    return [np.asarray(sorted(p), dtype=np.int64) for p in parts]
