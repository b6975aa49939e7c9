"""The answer cache's metadata in the PostgreSQL state: the same behaviour as the SQLite file, shared by hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.config import parse_config
from ragcli.generation.answer_cache import AnswerCache
from ragcli.generation.cache_build import cache_db_path, existing_cache_meta, invalidate_cited
from ragcli.generation.cache_protocols import CacheEntry, CacheScope, CitedChunk
from ragcli.generation.sqlite_cache_store import SqliteCacheStore
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore
from ragcli.types import Citation, Usage
from tests.unit.postgres_support import pg_admin_dsn, pg_dsn  # noqa: F401

SCOPE = CacheScope("docs", tenant="acme", filter="", pipeline="p1", model="m")


def _postgres(dsn: str) -> Any:
    from ragcli.state.postgres_cache_store import PostgresCacheStore
    from ragcli.state.postgres_database import PostgresDatabase

    return PostgresCacheStore(PostgresDatabase(dsn), owned=True)


@pytest.fixture(params=["sqlite", "postgres"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    store = (
        SqliteCacheStore(tmp_path / "cache.sqlite")
        if request.param == "sqlite"
        else _postgres(request.getfixturevalue("pg_dsn"))
    )
    yield store
    store.close()


def _entry(
    i: int, question: str, *, expires: float | None = None, cited: list[CitedChunk] | None = None
) -> CacheEntry:
    return CacheEntry(
        id=f"e{i}",
        scope=SCOPE,
        question=question,
        norm=question.lower(),
        answer=f"answer {i} [1]",
        citations=[Citation(1, f"c{i}", "/docs/a.md")],
        cited=cited if cited is not None else [CitedChunk(f"c{i}", f"d{i}", "h", f"/docs/{i}.md")],
        model="m",
        usage=Usage(100 + i, 0, 20, 0.001 * i, 1),
        created=1000.0 + i,
        expires=expires,
        vector=np.arange(4, dtype=np.float32) + i,
    )


def test_the_same_answers_on_sqlite_and_postgres(meta: Any) -> None:
    meta.put(_entry(1, "What is a cache?"))
    meta.put(_entry(2, "Taxi?", expires=1500.0, cited=[CitedChunk("c2", "d2", "h", "/docs/sub/b.md")]))
    meta.put(
        _entry(
            3, "Hotel?", cited=[CitedChunk("c3", "d3", "h", "/docsx/c.md"), CitedChunk("c9", "d9", "", "")]
        )
    )
    meta.put(_entry(1, "What is a cache?"))  # rewritten in place, its citations replaced, not doubled

    got = meta.get(["e3", "nope", "e1"])
    assert [e.id for e in got] == ["e3", "e1"]
    assert got[0].cited == [CitedChunk("c3", "d3", "h", "/docsx/c.md"), CitedChunk("c9", "d9", "", "")]
    assert got[1].usage.input_tokens == 101 and got[1].citations == [Citation(1, "c1", "/docs/a.md")]
    assert got[1].scope == SCOPE and np.array_equal(got[1].vector, np.arange(4, dtype=np.float32) + 1)
    assert meta.find_exact(SCOPE.key, "taxi?", 1400.0).id == "e2"
    assert meta.find_exact(SCOPE.key, "taxi?", 1600.0) is None  # expired
    assert meta.find_exact(CacheScope("docs", tenant="other").key, "taxi?", 1400.0) is None
    assert [e.id for e in meta.entries(2)] == ["e3", "e2"]

    meta.record_lookup("exact", "e1", saved_usd=0.25)
    meta.record_lookup("semantic", "e1", saved_usd=0.5)
    meta.record_lookup(None)
    s = meta.stats(1600.0)
    assert (s.entries, s.expired, s.lookups, s.exact_hits, s.semantic_hits, s.scopes) == (3, 1, 3, 1, 1, 1)
    assert s.saved_usd == pytest.approx(0.75) and meta.get(["e1"])[0].hits == 2

    assert meta.delete_source("/docs") == [
        "e1",
        "e2",
    ]  # a folder: /docs/1.md, /docs/sub/b.md, not /docsx/c.md
    assert meta.delete_expired(2000.0) == []
    assert meta.delete_ids(["e3", "e7"]) == ["e3"]
    meta.put(
        _entry(
            3, "Hotel?", cited=[CitedChunk("c3", "d3", "h", "/docsx/c.md"), CitedChunk("c9", "d9", "", "")]
        )
    )
    assert meta.delete_citing(doc_ids=["d9"]) == ["e3"]
    meta.put(_entry(4, "Visa?", expires=1200.0))
    meta.put(_entry(5, "Per diem?"))
    assert meta.delete_expired(1300.0) == ["e4"]
    assert meta.delete_all() == ["e5"] and meta.stats(0).entries == 0


def test_hosts_share_the_cache(pg_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # noqa: F811
    """Host A stores an answer; host B (its own index folder) serves the exact repeat; a re-ingest on host C
    drops it for everyone."""
    caches = [
        AnswerCache(_postgres(pg_dsn), QdrantEdgeStore(tmp_path / h, "answer_cache"), HashEmbedder(64))
        for h in ("a", "b")
    ]
    a, b = caches
    try:
        a.store(
            "What is the hotel limit?",
            SCOPE,
            "250 euros [1].",
            cited=[CitedChunk("c1", "d1", "h", "/docs/travel.md")],
            usage=Usage(400, 0, 20, 0.002, 1),
        )
        hit = b.lookup("what is the hotel limit", SCOPE).hit
        assert hit is not None and hit.tier == "exact" and hit.entry.answer == "250 euros [1]."
        b.served(hit, saved_usd=0.002)
        assert b.lookup("what is the hotel limit", CacheScope("docs", tenant="other")).hit is None
        assert a.meta.stats(0).exact_hits == 1  # B's hit, counted where A reads

        monkeypatch.setenv("RAGCLI_PG_DSN", pg_dsn)
        cfg = parse_config({"home": str(tmp_path / "c"), "state": {"dsn_env": "RAGCLI_PG_DSN"}})
        assert (
            invalidate_cited(cfg, chunk_ids=["nothing"], db=a.meta.db) == 0
        )  # the ingest's own pool, kept open
        assert a.meta.db.schema_version() > 0
        assert invalidate_cited(cfg, chunk_ids=["c1"]) == 1
        assert a.lookup("What is the hotel limit?", SCOPE).hit is None
        assert b.lookup("What is the hotel limit?", SCOPE).hit is None
        assert not cache_db_path(cfg).exists()  # no SQLite file on host C
        with existing_cache_meta(cfg) as meta:
            assert type(meta).__name__ == "PostgresCacheStore"
    finally:
        for cache in caches:
            cache.close()
