"""What every reranker does around scoring: check its knobs, then sort, cut off weak hits, drop near-duplicates,
keep the top n, and count the tokens it read.

Shared by the cross-encoder and FlagEmbedding rerankers so both mean the same by `top_n`, `min_score` and
`dedupe_threshold`. A weak or repeated hit dropped here is a chunk whose tokens the prompt never pays for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ragcli.errors import ConfigError
from ragcli.retrieval.protocols import Reranked
from ragcli.types import Hit, Usage

_WORD = re.compile(r"\w+")


def check_selection(top_n: int, min_score: float | None, dedupe_threshold: float | None) -> None:
    """Validate the shared knobs (constructors call this)."""
    if top_n < 1:
        raise ConfigError(f"reranker top_n must be at least 1, got {top_n}")
    if dedupe_threshold is not None and not 0.0 <= dedupe_threshold <= 1.0:
        raise ConfigError(
            f"reranker dedupe_threshold must be between 0 and 1 (or null to keep all), got {dedupe_threshold}"
        )
    if min_score is not None and min_score != min_score:  # NaN
        raise ConfigError("reranker min_score must be a number or null")


def check_reranker_args(
    kind: str,
    model: str,
    *,
    top_n: int,
    min_score: float | None,
    dedupe_threshold: float | None,
    batch_size: int,
    max_length: int,
) -> None:
    """Validate a cross-encoder reranker's constructor arguments; `kind` is its class name, for the message."""
    if not model:
        raise ConfigError(f"{kind} needs a model: `trained:NAME`, a folder or a hub id")
    check_selection(top_n, min_score, dedupe_threshold)
    if batch_size < 1 or max_length < 16:
        raise ConfigError(f"batch_size must be >= 1 and max_length >= 16, got {batch_size}, {max_length}")


def pair_tokens(tokenizer: Any, query: str, texts: Sequence[str], max_length: int) -> int:
    """Tokens a cross-encoder reads for the (query, text) pairs, each pair truncated to `max_length`."""
    if not texts:
        return 0
    enc = tokenizer([query] * len(texts), list(texts), truncation=True, max_length=max_length)
    return sum(len(ids) for ids in enc["input_ids"])


def word_set(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two word sets: 1.0 for the same words, 0.0 for none shared."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def remove_near_duplicates(hits: Sequence[Hit], threshold: float) -> tuple[list[Hit], int]:
    """Keep each hit unless an earlier (better-ranked) kept hit shares at least `threshold` of its words.

    Returns:
        The kept hits in their order, and how many were dropped.
    """
    kept: list[Hit] = []
    seen: list[frozenset[str]] = []
    for hit in hits:
        words = word_set(hit.chunk.text)
        if any(similarity(words, other) >= threshold for other in seen):
            continue
        kept.append(hit)
        seen.append(words)
    return kept, len(hits) - len(kept)


def select(
    hits: Sequence[Hit],
    scores: Sequence[float],
    *,
    top_n: int,
    min_score: float | None,
    dedupe_threshold: float | None,
    usage: Usage | None = None,
) -> Reranked:
    """Re-score `hits` with `scores`, sort by them, apply the cut-off, de-duplicate, and keep the top n.

    Ties keep the search's order (the sort is stable).
    """
    if len(hits) != len(scores):
        raise ValueError(f"{len(hits)} hits but {len(scores)} scores")
    ranked = sorted(
        (Hit(h.chunk, float(s)) for h, s in zip(hits, scores, strict=True)),
        key=lambda h: h.score,
        reverse=True,
    )
    below = 0
    if min_score is not None:
        above = [h for h in ranked if h.score >= min_score]
        below = len(ranked) - len(above)
        ranked = above
    duplicates = 0
    if dedupe_threshold is not None:
        ranked, duplicates = remove_near_duplicates(ranked, dedupe_threshold)
    return Reranked(
        hits=ranked[:top_n],
        usage=usage or Usage(),
        dropped_below_cutoff=below,
        dropped_duplicates=duplicates,
    )


def rerank_hits(
    query: str,
    hits: Sequence[Hit],
    *,
    score: Callable[[str, Sequence[str]], list[float]],
    count_tokens: Callable[[str, Sequence[str]], int],
    top_n: int,
    min_score: float | None,
    dedupe_threshold: float | None,
) -> Reranked:
    """Score `hits` against `query`, count the tokens read, and `select` from them (the rerank flow)."""
    texts = [h.chunk.text for h in hits]
    scores = score(query, texts)
    usage = Usage(input_tokens=count_tokens(query, texts), usd=0.0, calls=1)
    return select(
        hits,
        scores,
        top_n=top_n,
        min_score=min_score,
        dedupe_threshold=dedupe_threshold,
        usage=usage if hits else Usage(),
    )
