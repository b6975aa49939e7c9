"""Tenant scope: a query's own filter can narrow the mandatory scope, never widen it.

Proved three ways on both store back-ends: hand-picked hostile filters, several hundred random filters built
from every operator, and the query pipeline's own filter composition from a config.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.config import parse_config
from ragcli.errors import ConfigError
from ragcli.pipelines.query_pipeline import _query_filter
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.filter_parser import parse_where
from ragcli.retrieval.filters import And, Condition, Filter, Not, Or, all_of
from ragcli.retrieval.protocols import SearchRequest, VectorStore
from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore
from ragcli.retrieval.qdrant_server_store import QdrantServerStore
from ragcli.types import Chunk

FIELDS = {"tenant": "keyword", "type": "keyword", "year": "integer"}
TENANTS = ("acme", "globex", "initech")
N = 60


def _chunks() -> list[Chunk]:
    rng = random.Random(7)
    return [
        Chunk(
            id=f"00000000-0000-0000-0000-{i:012d}",
            doc_id=f"d{i}",
            text=f"chunk {i}",
            source=f"s{i}",
            metadata={
                "tenant": TENANTS[i % 3],
                "type": rng.choice(["pdf", "md"]),
                "year": 2000 + rng.randrange(25),
            },
        )
        for i in range(N)
    ]


@pytest.fixture(params=["edge", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s: Any = (
        QdrantEdgeStore(tmp_path / "shard", "t")
        if request.param == "edge"
        else QdrantServerStore("t", location=":memory:")
    )
    s.ensure_collection(8, sparse=False, indexed_fields=dict(FIELDS))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N, 8)).astype(np.float32)
    s.upsert(_chunks(), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    yield s
    s.close()


def _search(store: VectorStore, f: Filter | None) -> list[str]:
    hits = store.search(SearchRequest(dense=[1.0] * 8, limit=N, filter=f))
    return [str(h.chunk.metadata["tenant"]) for h in hits]


HOSTILE = [
    "tenant = 'globex'",
    "tenant = 'globex' or tenant = 'acme'",
    "tenant != 'acme'",
    "not tenant = 'acme'",
    "tenant in ('acme', 'globex', 'initech')",
    "tenant not in ('acme')",
    "year > 0 or tenant = 'globex'",
    "(tenant = 'globex' or type = 'pdf') or not (tenant = 'acme')",
    "not (not (tenant = 'globex'))",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_stay_inside_the_scope(store: VectorStore, query: str) -> None:
    scope = parse_where("tenant = 'acme'", FIELDS)
    tenants = _search(store, all_of(scope, parse_where(query, FIELDS)))
    assert set(tenants) <= {"acme"}


def test_a_query_can_narrow_the_scope(store: VectorStore) -> None:
    scope = parse_where({"tenant": "acme"}, FIELDS)
    everything = store.count(scope)
    narrowed = store.count(all_of(scope, parse_where("type = 'pdf'", FIELDS)))
    assert everything == N // 3
    assert 0 < narrowed < everything


def _random_filter(rng: random.Random, depth: int = 0) -> Filter:
    if depth >= 3 or rng.random() < 0.4:
        field = rng.choice(list(FIELDS))
        if field == "tenant":
            values = tuple(rng.sample(TENANTS, rng.randint(1, 3)))
            op = rng.choice(["eq", "ne", "in", "nin"])
            return Condition(field, op, values if op in ("in", "nin") else values[0])  # type: ignore[arg-type]
        if field == "type":
            return Condition(field, rng.choice(["eq", "ne"]), rng.choice(["pdf", "md"]))  # type: ignore[arg-type]
        return Condition(field, rng.choice(["lt", "lte", "gt", "gte", "eq", "ne"]), 2000 + rng.randrange(25))  # type: ignore[arg-type]
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        return Not(_random_filter(rng, depth + 1))
    items = tuple(_random_filter(rng, depth + 1) for _ in range(rng.randint(2, 3)))
    return And(items) if kind == "and" else Or(items)


def test_random_filters_never_reach_another_tenant(store: VectorStore) -> None:
    rng = random.Random(2024)
    for tenant in TENANTS:
        scope = parse_where(f"tenant = '{tenant}'", FIELDS)
        for _ in range(40):
            own = parse_where(_random_filter(rng), FIELDS)
            f = all_of(scope, own)
            assert set(_search(store, f)) <= {tenant}, f
            assert store.count(f) <= N // 3


def test_the_query_pipeline_ands_scope_default_and_query(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "filterable": FIELDS,
            "retrieval": {"tenant": {"tenant": "acme"}, "where": "year >= 2010"},
        }
    )
    stages = Stages.from_config(cfg)
    f = _query_filter(stages, "tenant = 'globex' or type = 'md'")
    assert isinstance(f, And)
    assert f.items[0] == Condition("tenant", "eq", "acme"), "the scope comes first and is never inside an OR"
    assert f.items[1] == Condition("year", "gte", 2010)
    assert isinstance(f.items[2], Or)


def test_a_scope_on_an_undeclared_field_is_refused() -> None:
    # refused when the config is loaded (`ragcli config validate` says so), not first at query time
    with pytest.raises(ConfigError, match=r"retrieval\.tenant: filter field 'tenant' is not filterable"):
        parse_config({"retrieval": {"tenant": "tenant = 'acme'"}})
