"""`routing.py`'s protocol for the routing side studies (`routing_targets.py`, `routing_lm_features.py`): RouteLLM's
outcomes with their MiniLM embeddings, five 70/30 splits stratified by benchmark, each split's router features
(embedding plus `RouterFeatures.dense`), and held-out APGR per scope collected over the splits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragcli.eval.routing_metrics import gain_curve  # noqa: E402

SCOPES = ("combined", "gsm8k", "mmlu")


def study_parser(doc: str) -> argparse.ArgumentParser:
    """The side studies' command line: `--data` (the evaluation data folder) and `--seeds` (`routing.py`'s)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    return ap


@dataclass
class Split:
    """One seed's split: prompt indices, and the router's features of each part."""

    train: np.ndarray
    test: np.ndarray
    x_train: np.ndarray
    x_test: np.ndarray


@dataclass
class RoutingStudy:
    """The outcomes file, its MiniLM embeddings and the APGR collected so far (mean ± sd over the splits)."""

    outcomes: Any
    embeddings: np.ndarray
    apgr: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    @classmethod
    def load(cls, data: Path) -> RoutingStudy:
        from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
        from ragcli.resources import cache_dir, offline_env
        from ragcli.train.router_outcomes import read_outcomes
        from ragcli.train.router_training import embed_prompts

        offline_env()
        outcomes = read_outcomes(data / "routing" / "outcomes.jsonl")
        return cls(
            outcomes, embed_prompts(outcomes.prompts, SentenceTransformerEmbedder(), cache_dir("cache"))
        )

    @property
    def weak(self) -> np.ndarray:
        return np.asarray(self.outcomes.labels[:, 0])

    @property
    def strong(self) -> np.ndarray:
        return np.asarray(self.outcomes.labels[:, -1])

    def splits(self, seeds: Sequence[int]) -> Iterator[Split]:
        """Per seed, `routing.py`'s 70/30 split and the features `ragcli train router` builds on it."""
        from ragcli.generation.router_features import RouterFeatures
        from ragcli.train.router_outcomes import split_indices

        o = self.outcomes
        for seed in seeds:
            train, test = split_indices(o, [0.7, 0.3], seed)
            feats = RouterFeatures.fit(
                [o.prompts[i] for i in train],
                [o.subjects[i] for i in train],
                [o.benchmarks[i] for i in train],
            )

            def x(idx: np.ndarray, feats: RouterFeatures = feats) -> np.ndarray:
                dense = feats.dense(
                    [o.prompts[i] for i in idx], [o.subjects[i] for i in idx], [o.benchmarks[i] for i in idx]
                )
                return np.hstack([self.embeddings[idx], dense])

            yield Split(train, test, x(train), x(test))

    def record(self, name: str, scores: np.ndarray, test: np.ndarray) -> None:
        """Held-out APGR of `scores` (one per `test` prompt) in each scope."""
        bench = np.asarray(self.outcomes.benchmarks)[test]
        weak, strong = self.weak[test], self.strong[test]
        for scope in SCOPES:
            m = np.ones(len(test), bool) if scope == "combined" else bench == scope
            self.apgr.setdefault((name, scope), []).append(gain_curve(scores[m], weak[m], strong[m]).apgr())

    def table(self, first_column: str) -> str:
        """A markdown table, one row per recorded name in the order recorded."""
        lines = [f"| {first_column} | combined | GSM8K | MMLU |", "| --- | ---: | ---: | ---: |"]
        for name in dict.fromkeys(k[0] for k in self.apgr):
            cells = [
                f"{np.mean(self.apgr[(name, s)]):.3f} ± {np.std(self.apgr[(name, s)]):.3f}" for s in SCOPES
            ]
            lines.append(f"| {name} | {' | '.join(cells)} |")
        return "\n".join(lines)
