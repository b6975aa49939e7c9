"""Relevance labels from `ragcli feedback`, as the pairs file the trainers read (`{query, passage, label}`).

An answer's sources are recorded by chunk id (`sources` in the ledger); their text is read back from the store
when the pairs are written, so a chunk re-ingested or removed since drops out rather than teaching stale text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ragcli.config import PipelineConfig
from ragcli.errors import InputError
from ragcli.generation.route_log import Judged


@dataclass(frozen=True)
class FeedbackPairs:
    """Where the pairs were written and what they hold."""

    path: Path
    pairs: int
    queries: int
    positives: int
    explicit: int
    """Labels given source by source (`--relevant` / `--irrelevant`); the rest are a good answer's citations."""
    gone: int
    """Judged sources whose chunk is no longer in the collection (left out)."""


def _judged(cfg: PipelineConfig) -> tuple[str, list[Judged]]:
    """Where the route log is (a file, or a redacted PostgreSQL DSN) and the collection's relevance labels from feedback, oldest first.

    Raises:
        InputError: feedback labels no source of this collection, naming the commands that make such labels.
    """
    from ragcli.state.build import open_route_log

    log = open_route_log(cfg)
    ledger = str(log.path)
    try:
        judged = log.judged_sources(cfg.collection)
    finally:
        log.close()
    if not judged:
        raise InputError(
            f"no relevance labels from feedback for collection {cfg.collection!r} in {ledger}: answer questions "
            "with `ragcli query`, then `ragcli feedback QUERY_ID good` (the sources it cited count as relevant) "
            "or `ragcli feedback QUERY_ID good|bad --relevant 1,3 --irrelevant 2`"
        )
    return ledger, judged


def feedback_qrels(cfg: PipelineConfig) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The collection's feedback as (query id -> question, query id -> {judged chunk id: 1 relevant, 0 not}):
    what a fusion is trained on in the user's own collection. Questions with no source judged relevant are left
    out.

    Raises:
        InputError: no source of this collection was judged relevant.
    """
    ledger, judged_sources = _judged(cfg)
    latest: dict[tuple[str, str], bool] = {}
    for j in judged_sources:  # oldest first: the latest judgment wins
        latest[(j.question, j.chunk_id)] = j.relevant
    judged: dict[str, dict[str, int]] = {}
    for (question, chunk_id), ok in latest.items():
        judged.setdefault(question, {})[chunk_id] = int(ok)
    relevant = {q: labels for q, labels in judged.items() if any(labels.values())}
    if not relevant:
        raise InputError(
            f"no source of collection {cfg.collection!r} was judged relevant in {ledger}: answer questions "
            "with `ragcli query`, then `ragcli feedback QUERY_ID good` (the sources it cited count as relevant) "
            "or `ragcli feedback QUERY_ID good|bad --relevant 1,3`"
        )
    ids = {question: f"fb{i}" for i, question in enumerate(relevant)}
    return {q_id: q for q, q_id in ids.items()}, {ids[q]: r for q, r in relevant.items()}


def write_feedback_pairs(cfg: PipelineConfig, out: Path | None = None) -> FeedbackPairs:
    """Write the config's collection's relevance labels from feedback as a pairs JSONL.

    Raises:
        InputError: no feedback labels a source of this collection, naming the commands that make them.
    """
    from ragcli.pipelines.stages import Stages

    _, judged = _judged(cfg)
    stages = Stages.from_config(cfg)
    try:
        chunks = stages.store.get_chunks(sorted({j.chunk_id for j in judged}))
    finally:
        stages.close()
    labels: dict[tuple[str, str], tuple[int, bool]] = {}
    for j in judged:  # oldest first: a later judgment of the same passage for the same question wins
        chunk = chunks.get(j.chunk_id)
        if chunk is not None:
            labels[(j.question, chunk.text)] = (int(j.relevant), j.explicit)
    path = out or cfg.home_dir() / "feedback" / f"pairs-{cfg.collection}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            json.dumps({"query": q, "passage": p, "label": label}) + "\n"
            for (q, p), (label, _) in labels.items()
        ),
        encoding="utf-8",
    )
    return FeedbackPairs(
        path=path,
        pairs=len(labels),
        queries=len({q for q, _ in labels}),
        positives=sum(label for label, _ in labels.values()),
        explicit=sum(explicit for _, explicit in labels.values()),
        gone=sum(1 for j in judged if j.chunk_id not in chunks),
    )
