"""The answer cache: tiers, scope isolation (randomised), invalidation, TTL, the SQLite store, the verifier file."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragcli.config import parse_config
from ragcli.errors import InputError, ResourceMissing
from ragcli.generation.answer_cache import AnswerCache
from ragcli.generation.cache_build import cache_db_path, cache_scope, invalidate_cited, pipeline_version
from ragcli.generation.cache_protocols import CacheScope, CitedChunk
from ragcli.generation.cache_verifier import CARD, FORMAT, HEAD, CacheVerifier, resolve_verifier
from ragcli.generation.pair_features import FEATURE_NAMES
from ragcli.generation.sqlite_cache_store import SqliteCacheStore
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.retrieval.filters import Condition
from ragcli.retrieval.protocols import VectorStore
from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore
from ragcli.retrieval.qdrant_server_store import QdrantServerStore
from ragcli.types import Citation, Usage


class AlwaysSame:
    """The most permissive verifier possible: every candidate is 'the same question'."""

    threshold = 0.5

    def reuses(self, embedder_name: str) -> bool:
        return True

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return HashEmbedder(64).embed(list(texts)).vectors

    def score_vectors(
        self, a_texts: Sequence[str], b_texts: Sequence[str], a_vecs: np.ndarray, b_vecs: np.ndarray
    ) -> np.ndarray:
        return np.ones(len(a_texts))


class NeverSame(AlwaysSame):
    def score_vectors(
        self, a_texts: Sequence[str], b_texts: Sequence[str], a_vecs: np.ndarray, b_vecs: np.ndarray
    ) -> np.ndarray:
        return np.zeros(len(a_texts))


@pytest.fixture(params=["edge", "memory"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    store: VectorStore
    if request.param == "edge":
        store = QdrantEdgeStore(tmp_path / "cache-index", "answer_cache")
    else:
        store = QdrantServerStore("answer_cache", location=":memory:")
    yield store
    store.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _cache(tmp_path: Path, index: VectorStore, verifier: object = None, **kw: object) -> AnswerCache:
    return AnswerCache(
        SqliteCacheStore(tmp_path / "cache.sqlite"),
        index,
        HashEmbedder(64),
        verifier=verifier,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


SCOPE = CacheScope("docs", tenant="", filter="", pipeline="p1", model="m")


def test_exact_then_semantic_then_miss(tmp_path: Path, index: VectorStore) -> None:
    cache = _cache(tmp_path, index, AlwaysSame())
    cited = [CitedChunk("c1", "d1", "h1", "/docs/a.md")]
    cache.store(
        "What is a cache?",
        SCOPE,
        "A store [1].",
        citations=[Citation(1, "c1", "/docs/a.md")],
        cited=cited,
        model="m",
        usage=Usage(100, 0, 20, 0.001, 1),
    )
    hit = cache.lookup("what is a CACHE", SCOPE).hit
    assert hit is not None and hit.tier == "exact" and hit.entry.answer == "A store [1]."
    assert hit.entry.citations[0].chunk_id == "c1" and hit.entry.usage.input_tokens == 100
    hit = cache.lookup("Explain what a cache is", SCOPE).hit
    assert hit is not None and hit.tier == "semantic"
    strict = _cache(tmp_path, index, NeverSame())
    assert strict.lookup("Explain what a cache is", SCOPE).hit is None
    assert strict.lookup("What is a cache?", SCOPE).hit is not None  # exact still serves


def test_the_index_is_optimised_every_so_many_entries(
    tmp_path: Path, index: VectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ragcli.generation.answer_cache.OPTIMIZE_EVERY", 3)
    calls: list[int] = []
    monkeypatch.setattr(index, "optimize", lambda: calls.append(index.count()))
    cache = _cache(tmp_path, index, AlwaysSame())
    for i in range(7):
        cache.store(f"question number {i}?", SCOPE, f"answer {i}")
    assert calls == [3, 6]  # search still answers after each
    hit = cache.lookup("question number 4?", SCOPE).hit
    assert hit is not None and hit.entry.answer == "answer 4"


def test_no_verifier_serves_exact_only(tmp_path: Path, index: VectorStore) -> None:
    cache = _cache(tmp_path, index)
    cache.store("What is a cache?", SCOPE, "A store.")
    look = cache.lookup("Explain what a cache is", SCOPE)
    assert look.hit is None and "no verifier" in look.tried


def test_never_served_across_scopes_randomised(tmp_path: Path, index: VectorStore) -> None:
    """Even a verifier that accepts everything never serves another tenant's or filter's entry."""
    rng = random.Random(11)
    cache = _cache(tmp_path, index, AlwaysSame())
    tenants = ["", "acme", "globex", "initech"]
    filters = [
        "",
        "Condition(field='type', op='eq', value='pdf')",
        "Condition(field='year', op='gte', value=2020)",
    ]
    scopes = [
        CacheScope(col, tenant=t, filter=f, pipeline=p, model=m)
        for col in ("docs", "wiki")
        for t in tenants
        for f in filters
        for p in ("p1", "p2")
        for m in ("small", "large")
    ]
    questions = [f"how do I configure feature {i} of the product" for i in range(12)]
    written: dict[str, set[str]] = {}
    for _ in range(120):
        scope, q = rng.choice(scopes), rng.choice(questions)
        entry = cache.store(q, scope, f"answer for {scope.key}")
        written.setdefault(scope.key, set()).add(entry.id)
    for _ in range(400):
        scope = rng.choice(scopes)
        q = rng.choice(questions)
        q = q if rng.random() < 0.5 else q.replace("how do I", "how can I")
        look = cache.lookup(q, scope)
        if look.hit is not None:
            assert look.hit.entry.scope == scope
            assert look.hit.entry.id in written[scope.key]
            assert look.hit.entry.answer == f"answer for {scope.key}"
        elif scope.key in written:
            # the permissive verifier accepts any candidate of the same scope
            pytest.fail(f"a scope with entries missed: {scope}")


def test_invalidation_by_chunk_doc_source(tmp_path: Path, index: VectorStore) -> None:
    cache = _cache(tmp_path, index, AlwaysSame())
    cache.store("q one?", SCOPE, "a1", cited=[CitedChunk("c1", "d1", "h", "/docs/a.md")])
    cache.store("q two?", SCOPE, "a2", cited=[CitedChunk("c2", "d2", "h", "/docs/sub/b.md")])
    cache.store("q three?", SCOPE, "a3", cited=[CitedChunk("c3", "d3", "h", "/other/c.md")])
    assert cache.invalidate(chunk_ids=["c1"]) == 1
    assert all(e.question != "q one?" for e in cache.meta.entries())
    assert cache.invalidate_source("/docs") == 1
    assert [e.question for e in cache.meta.entries()] == ["q three?"]
    assert cache.invalidate(doc_ids=["d3"]) == 1
    assert cache.meta.entries() == []
    assert cache.lookup("q three?", SCOPE).hit is None


def test_ttl_expires(tmp_path: Path, index: VectorStore) -> None:
    clock = Clock()
    cache = _cache(tmp_path, index, AlwaysSame(), ttl_s=60, clock=clock)
    cache.store("What is a cache?", SCOPE, "A store.")
    assert cache.lookup("What is a cache?", SCOPE).hit is not None
    clock.now += 61
    assert cache.lookup("What is a cache?", SCOPE).hit is None
    assert cache.lookup("what is the cache", SCOPE).hit is None
    assert cache.purge_expired() == 1


def test_stats_and_savings(tmp_path: Path, index: VectorStore) -> None:
    cache = _cache(tmp_path, index, AlwaysSame())
    cache.store("What is a cache?", SCOPE, "A store.")
    hit = cache.lookup("What is a cache?", SCOPE).hit
    assert hit is not None
    cache.served(hit, saved_usd=0.25)
    cache.lookup("unrelated", CacheScope("other"))
    s = cache.meta.stats(cache.clock())
    assert (s.entries, s.exact_hits, s.lookups, s.saved_usd) == (1, 1, 2, 0.25)
    assert cache.clear() == 1 and cache.meta.stats(0).entries == 0


def test_constructor_and_store_errors(tmp_path: Path, index: VectorStore) -> None:
    with pytest.raises(InputError, match="candidates"):
        _cache(tmp_path, index, candidates=0)
    with pytest.raises(InputError, match="ttl_s"):
        _cache(tmp_path, index, ttl_s=0)
    with pytest.raises(InputError, match="non-empty"):
        _cache(tmp_path, index).store("q", SCOPE, " ")


def test_ingest_hook_without_cache_file_is_a_noop(tmp_path: Path) -> None:
    cfg = parse_config({"home": str(tmp_path / "home")})
    assert invalidate_cited(cfg, ["c1"]) == 0
    assert not cache_db_path(cfg).exists()
    with SqliteCacheStore(cache_db_path(cfg)) as meta:
        cache = AnswerCache(meta, QdrantServerStore("c", location=":memory:"), HashEmbedder(64))
        cache.store("q?", SCOPE, "a", cited=[CitedChunk("c1", "d1")])
    assert invalidate_cited(cfg, ["c1"]) == 1


def test_scope_follows_config_and_filter() -> None:
    base = parse_config({"collection": "docs"})
    other_prompt = parse_config({"collection": "docs", "prompt": {"system": "Be terse."}})
    assert pipeline_version(base) != pipeline_version(other_prompt)
    t = Condition("tenant", "eq", "acme")
    a = cache_scope(base, tenant=t, effective=t, model="m")
    b = cache_scope(base, tenant=Condition("tenant", "eq", "globex"), effective=t, model="m")
    assert a.key != b.key and a.key == cache_scope(base, tenant=t, effective=t, model="m").key
    assert cache_scope(base, tenant=t, effective=t, model="m2").key != a.key


def test_cache_config_defaults_off() -> None:
    cfg = parse_config({})
    assert cfg.cache.enabled is False and cfg.cache.target_precision == 0.95
    assert cfg.cache.history == "skip"
    with pytest.raises(Exception, match=r"cache\.semantic"):
        parse_config({"cache": {"semantic": "maybe"}})


def _write_verifier(folder: Path, encoder: str, threshold: float | None) -> None:
    folder.mkdir(parents=True)
    dim = 64 * 2 + 1 + len(FEATURE_NAMES)
    w = np.zeros((dim, 1), dtype=np.float32)
    w[2 * 64, 0] = 10.0  # the cosine column
    np.savez(
        folder / HEAD,
        mean=np.zeros(dim, np.float32),
        std=np.ones(dim, np.float32),
        W0=w,
        b0=np.array([-5.0], np.float32),
    )
    card = {
        "format": FORMAT,
        "name": folder.name,
        "trained_at": "2026-12-02T00:00:00",
        "encoder": encoder,
        "features": list(FEATURE_NAMES),
        "threshold": threshold,
    }
    (folder / CARD).write_text(json.dumps(card))


def test_verifier_folder_scores_and_resolves(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write_verifier(home / "verifiers" / "v1", "hash-64", 0.9)
    v = CacheVerifier(resolve_verifier(home, None), embedder=HashEmbedder(64))
    assert v.reuses("hash-64") and v.threshold == 0.9
    s = v.score(["what is a cache", "what is a cache"], ["what is a cache", "tell me about zebras"])
    assert s[0] > 0.99 and s[1] < s[0]
    assert v.same("what is a cache", "what is a cache")
    with pytest.raises(ResourceMissing, match="not found"):
        resolve_verifier(home, "nope")
    with pytest.raises(ResourceMissing, match="no cache verifier"):
        resolve_verifier(tmp_path / "empty", None)
    (home / "verifiers" / "v1" / CARD).write_text(json.dumps({"format": 0}))
    with pytest.raises(ResourceMissing, match="retrain"):
        CacheVerifier(home / "verifiers" / "v1")
