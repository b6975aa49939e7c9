"""After scoring: cut-off, near-duplicate removal, top n; and hybrid fusion against a reference RRF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.errors import ConfigError
from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
from ragcli.retrieval.protocols import SearchRequest, VectorStore
from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore
from ragcli.retrieval.qdrant_server_store import QdrantServerStore
from ragcli.retrieval.rerank_selection import check_selection, remove_near_duplicates, select
from ragcli.types import Chunk, Hit, Usage


def _hit(i: int, text: str, score: float = 0.0) -> Hit:
    return Hit(Chunk(id=str(i), doc_id=f"d{i}", text=text, source="s"), score)


def test_sorts_by_new_score_cuts_off_and_keeps_top_n() -> None:
    hits = [_hit(i, f"passage number {i} about topic {i}") for i in range(6)]
    out = select(hits, [0.1, 0.9, 0.5, 0.05, 0.7, 0.3], top_n=2, min_score=0.2, dedupe_threshold=None)
    assert [h.chunk.id for h in out.hits] == ["1", "4"]
    assert [h.score for h in out.hits] == [0.9, 0.7]
    assert out.dropped_below_cutoff == 2
    assert out.dropped_duplicates == 0


def test_cut_off_can_leave_nothing_and_says_so() -> None:
    out = select([_hit(0, "a"), _hit(1, "b")], [0.01, 0.02], top_n=5, min_score=0.5, dedupe_threshold=0.9)
    assert out.hits == [] and out.dropped_below_cutoff == 2


def test_near_duplicates_keep_the_better_ranked_copy() -> None:
    text = "The invoice must be paid within thirty days of receipt by bank transfer"
    hits = [
        _hit(0, text),
        _hit(1, text + "."),  # the same words
        _hit(2, "Mitochondria are the powerhouse of the cell"),
        _hit(3, text.replace("thirty", "sixty")),  # one word differs
    ]
    out = select(hits, [0.5, 0.9, 0.8, 0.1], top_n=10, min_score=None, dedupe_threshold=0.95)
    assert [h.chunk.id for h in out.hits] == ["1", "2", "3"]
    assert out.dropped_duplicates == 1
    looser, dropped = remove_near_duplicates(out.hits, 0.8)
    assert [h.chunk.id for h in looser] == ["1", "2"] and dropped == 1


def test_ties_keep_search_order_and_usage_passes_through() -> None:
    hits = [_hit(i, f"text {i} unique{i}") for i in range(3)]
    out = select(hits, [0.5, 0.5, 0.5], top_n=3, min_score=None, dedupe_threshold=None, usage=Usage(calls=1))
    assert [h.chunk.id for h in out.hits] == ["0", "1", "2"]
    assert out.usage.calls == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, None, None), "top_n must be at least 1, got 0"),
        ((5, None, 1.5), "dedupe_threshold must be between 0 and 1 (or null to keep all), got 1.5"),
        ((5, float("nan"), None), "min_score must be a number or null"),
    ],
)
def test_knobs_are_validated(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_selection(*args)
    assert message in str(info.value)


def test_scores_and_hits_must_match() -> None:
    with pytest.raises(ValueError, match="2 hits but 1 scores"):
        select([_hit(0, "a"), _hit(1, "b")], [0.1], top_n=1, min_score=None, dedupe_threshold=None)


# ---------------------------------------------------------------- fusion

TEXTS = [
    "solar panels convert sunlight into electricity",
    "wind turbines generate power from moving air",
    "the battery stores electricity for the night",
    "photovoltaic cells are made of silicon",
    "hydroelectric dams turn falling water into power",
    "electricity prices rise in winter",
    "sunlight reaches earth in eight minutes",
    "a grid connects generators to consumers",
]


@pytest.fixture(params=["edge", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s: Any = (
        QdrantEdgeStore(tmp_path / "shard", "f")
        if request.param == "edge"
        else QdrantServerStore("f", location=":memory:")
    )
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(TEXTS), 16)).astype(np.float32)
    chunks = [Chunk(id=f"00000000-0000-0000-0000-{i:012d}", doc_id=f"d{i}", text=t, source="s")
              for i, t in enumerate(TEXTS)]  # fmt: skip
    s.ensure_collection(16, sparse=True, indexed_fields={})
    s.upsert(
        chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), Bm25SparseEncoder().encode(TEXTS)
    )
    yield s
    s.close()


def reference_rrf(rankings: list[list[str]], k: int) -> dict[str, float]:
    """Reciprocal rank fusion as Qdrant computes it: sum over rankings of 1 / (k + rank), rank from 0."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return scores


@pytest.mark.parametrize("k", [2, 60])
def test_hybrid_is_reciprocal_rank_fusion_of_dense_and_sparse(store: VectorStore, k: int) -> None:
    rng = np.random.default_rng(11)
    dense = list(rng.normal(size=16).astype(float))
    sparse = Bm25SparseEncoder().encode_query("sunlight electricity")
    depth = len(TEXTS)
    d = [h.chunk.id for h in store.search(SearchRequest(dense=dense, limit=depth))]
    s = [h.chunk.id for h in store.search(SearchRequest(sparse=sparse, mode="sparse", limit=depth))]
    fused = store.search(
        SearchRequest(dense=dense, sparse=sparse, mode="hybrid", limit=depth, prefetch_limit=depth, rrf_k=k)
    )
    expected = reference_rrf([d, s], k)
    got = [h.chunk.id for h in fused]
    assert set(got) == set(expected)
    values = [expected[c] for c in got]
    assert values == sorted(values, reverse=True), "hybrid order must follow the RRF score"
