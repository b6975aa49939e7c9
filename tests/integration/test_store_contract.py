"""One contract, every store back-end: Qdrant's embedded engine, qdrant-client's `:memory:` stand-in
for a server, and a real server when `QDRANT_URL` is set. The same assertions run against each."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.errors import ConfigError, InputError
from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
from ragcli.retrieval.filter_parser import parse_where
from ragcli.retrieval.filters import And, Condition, Filter, Not, Or, all_of
from ragcli.retrieval.protocols import SearchRequest, VectorStore
from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore
from ragcli.retrieval.qdrant_server_store import QdrantServerStore
from ragcli.types import Chunk, Scalar

pytestmark = pytest.mark.integration

_REAL_CONNECT = socket.socket.connect  # saved before the autouse guard patches it
DIM = 32
FIELDS = {
    "tenant": "keyword",
    "type": "keyword",
    "year": "integer",
    "score": "float",
    "draft": "bool",
    "tag": "keyword",
}

TEXTS = [
    "Qdrant stores vectors and payloads for similarity search",
    "The cat sat on the warm mat in the afternoon sun",
    "Reciprocal rank fusion merges dense and sparse rankings",
    "Invoices from March must be paid before the end of April",
    "A cross-encoder reads the query and passage together",
    "Mitochondria are the powerhouse of the cell",
    "Tokens cost money; packing fewer tokens saves dollars",
    "Payload indexes make filtered search fast at scale",
]


def embed(text: str) -> list[float]:
    """A deterministic bag-of-words vector: enough to make nearest neighbours meaningful for these texts."""
    v = np.zeros(DIM, dtype=np.float32)
    for word in text.lower().split():
        v[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    return list(v / (np.linalg.norm(v) or 1.0))


def make_chunks() -> list[Chunk]:
    chunks = []
    for i, text in enumerate(TEXTS):
        doc = f"doc{i // 2}"
        meta: dict[str, Any] = {
            "tenant": "a" if i % 2 == 0 else "b",
            "type": ["pdf", "md", "html"][i % 3],
            "year": 2018 + i,
            "score": 0.25 * (i % 4),
            "draft": i % 3 == 0,
            "tag": ["x", "y"] if i % 2 else ["z"],
            "doc_hash": f"h{i // 2}",
            "doc_chunks": 2,
        }
        chunks.append(
            Chunk(
                id=str(uuid.UUID(int=i + 1)),
                doc_id=doc,
                text=text,
                source=f"/data/{doc}.md",
                section_path=("Title", f"Section {i}"),
                page=i if i % 2 else None,
                ordinal=i % 2,
                tokens=len(text.split()),
                content_hash=f"c{i}",
                metadata=meta,
            )
        )
    return chunks


def matches(f: Filter, meta: dict[str, Any]) -> bool:
    """A reference evaluator of the filter AST, with the documented semantics."""
    if isinstance(f, And):
        return all(matches(i, meta) for i in f.items)
    if isinstance(f, Or):
        return any(matches(i, meta) for i in f.items)
    if isinstance(f, Not):
        return not matches(f.item, meta)
    have = meta.get(f.field)
    values: list[Scalar] = have if isinstance(have, list) else ([] if have is None else [have])
    wanted = f.value if isinstance(f.value, tuple) else (f.value,)
    if f.op in ("eq", "in"):
        return any(v == w and type(v) is type(w) for v in values for w in wanted)
    if f.op in ("ne", "nin"):
        return not any(v == w and type(v) is type(w) for v in values for w in wanted)
    ops = {
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
    }
    return any(ops[f.op](v, wanted[0]) for v in values if not isinstance(v, bool | str))


@pytest.fixture(autouse=True)
def _allow_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """With QDRANT_URL set, the user asked for that server: let tests reach it."""
    if os.environ.get("QDRANT_URL"):
        monkeypatch.setattr(socket.socket, "connect", _REAL_CONNECT)


def _open(kind: str, folder: Path) -> Any:
    if kind == "edge":
        return QdrantEdgeStore(folder / "shard", "contract")
    if kind == "memory":
        return QdrantServerStore("contract", location=":memory:")
    url = os.environ.get("QDRANT_URL")
    if not url:
        pytest.skip("no Qdrant server: set QDRANT_URL (and QDRANT_API_KEY if it needs one) to run against it")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _REAL_CONNECT)
        return QdrantServerStore(
            f"ragcli-contract-{uuid.uuid4().hex[:8]}", url=url, api_key=os.environ.get("QDRANT_API_KEY")
        )


def _drop(kind: str, s: Any) -> None:
    if kind == "server":
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(socket.socket, "connect", _REAL_CONNECT)
            s.client.delete_collection(s.collection)
    s.close()


@pytest.fixture(params=["edge", "memory", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """An empty store, one per test (for tests that write)."""
    s = _open(request.param, tmp_path)
    yield s
    _drop(request.param, s)


@pytest.fixture(scope="module", params=["edge", "memory", "server"])
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VectorStore, list[Chunk]]]:
    """A filled store shared by the read-only tests of one back-end."""
    s = _open(request.param, tmp_path_factory.mktemp(request.param))
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "server":
            mp.setattr(socket.socket, "connect", _REAL_CONNECT)
        chunks = fill(s)
    yield s, chunks
    _drop(request.param, s)


def fill(store: VectorStore, *, sparse: bool = True) -> list[Chunk]:
    chunks = make_chunks()
    store.ensure_collection(DIM, sparse=sparse, indexed_fields=dict(FIELDS))
    vectors = np.array([embed(c.text) for c in chunks], dtype=np.float32)
    encoded = Bm25SparseEncoder().encode([c.text for c in chunks]) if sparse else None
    store.upsert(chunks, vectors, encoded)
    return chunks


def test_round_trip_and_documents(store: VectorStore) -> None:
    chunks = fill(store)
    assert store.count() == len(chunks)
    store.upsert(chunks[:2], np.array([embed(c.text) for c in chunks[:2]], dtype=np.float32))
    assert store.count() == len(chunks), "upserting the same ids again must not duplicate"
    hits = store.search(SearchRequest(dense=embed(TEXTS[5]), limit=3))
    assert hits[0].chunk == chunks[5], "the hit's chunk is rebuilt exactly from the payload"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    docs = store.documents()
    assert sorted(docs) == ["doc0", "doc1", "doc2", "doc3"]
    d = docs["doc1"]
    assert (d.source, d.content_hash, d.expected_chunks, d.complete) == ("/data/doc1.md", "h1", 2, True)
    assert set(d.chunk_ids) == {chunks[2].id, chunks[3].id}
    store.optimize()  # what a large ingest ends with: the same points, the same answers
    assert store.count() == len(chunks)
    assert [h.chunk.id for h in store.search(SearchRequest(dense=embed(TEXTS[5]), limit=3))] == [
        h.chunk.id for h in hits
    ]


def test_dense_vectors_read_back_what_was_stored(store: VectorStore) -> None:
    chunks = fill(store)
    asked = [chunks[5].id, "no-such-chunk", chunks[0].id]
    got = store.dense_vectors(asked)
    assert sorted(got) == sorted([chunks[5].id, chunks[0].id])  # an id the store lacks is left out
    for c in (chunks[5], chunks[0]):
        assert np.allclose(got[c.id], embed(c.text), atol=1e-5)
    assert store.dense_vectors([]) == {}


@pytest.mark.parametrize(
    "expr",
    [
        "tenant = 'a'",
        "type != 'pdf'",
        "year >= 2021 and year < 2024",
        "score = 0.5",
        "score > 0.2",
        "draft = true",
        "draft != true",
        "tag in ('x')",
        "tag not in ('x', 'q')",
        "tag = 'z'",
        "type in ('md', 'html') or year <= 2018",
        "not (tenant = 'a' or year > 2023)",
        "year in (2019, 2020, 1999)",
        {"type": "pdf", "year": {"gte": 2019}},
        {"or": [{"tag": ["y"]}, {"not": {"draft": False}}]},
    ],
)
def test_filters_mean_the_same_everywhere(filled: tuple[VectorStore, list[Chunk]], expr: Any) -> None:
    store, chunks = filled
    f = parse_where(expr, FIELDS)
    assert f is not None
    expected = {c.id for c in chunks if matches(f, c.metadata)}
    assert store.count(f) == len(expected)
    hits = store.search(SearchRequest(dense=embed("search tokens"), limit=len(chunks), filter=f))
    assert {h.chunk.id for h in hits} == expected


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize(
    "query",
    [
        "tenant = 'b'",
        "tenant = 'b' or tenant = 'a'",
        "not tenant = 'a'",
        "tenant != 'a' or year > 0",
        "tenant in ('a', 'b')",
        "(tenant = 'b' or type = 'pdf') or not (tenant = 'a')",
        None,
    ],
)
def test_tenant_scope_is_never_widened(
    filled: tuple[VectorStore, list[Chunk]], mode: str, query: str | None
) -> None:
    store, chunks = filled
    scope = parse_where("tenant = 'a'", FIELDS)
    f = all_of(scope, parse_where(query, FIELDS))
    text = "cat mat fusion vectors invoices cell tokens payload"
    request = SearchRequest(
        dense=embed(text),
        sparse=Bm25SparseEncoder().encode_query(text),
        mode=mode,  # type: ignore[arg-type]
        limit=len(chunks),
        filter=f,
    )
    hits = store.search(request)
    assert all(h.chunk.metadata["tenant"] == "a" for h in hits)
    assert store.count(f) <= sum(1 for c in chunks if c.metadata["tenant"] == "a")


def test_sparse_and_hybrid_find_the_keyword_match(filled: tuple[VectorStore, list[Chunk]]) -> None:
    store, chunks = filled
    enc = Bm25SparseEncoder()
    q = "mitochondria powerhouse"
    sparse = store.search(SearchRequest(sparse=enc.encode_query(q), mode="sparse", limit=3))
    assert sparse[0].chunk.id == chunks[5].id
    hybrid = store.search(SearchRequest(dense=embed(q), sparse=enc.encode_query(q), mode="hybrid", limit=3))
    assert hybrid[0].chunk.id == chunks[5].id
    assert len(hybrid) == 3
    only_stopwords = store.search(
        SearchRequest(dense=embed(q), sparse=enc.encode_query("the of and"), mode="hybrid", limit=2)
    )
    assert len(only_stopwords) == 2, "a query with no sparse terms falls back to dense"


def test_search_many_equals_the_searches_one_by_one(filled: tuple[VectorStore, list[Chunk]]) -> None:
    """The fused hybrid path's batch (one round trip on a server) returns what separate searches return."""
    store, _ = filled
    enc = Bm25SparseEncoder()
    q = "mitochondria powerhouse"
    f = parse_where("type = 'md'", FIELDS)
    requests = [
        SearchRequest(dense=embed(q), mode="dense", limit=4),
        SearchRequest(sparse=enc.encode_query(q), mode="sparse", limit=4, filter=f),
        SearchRequest(sparse=enc.encode_query("the of and"), mode="sparse", limit=4),
        SearchRequest(dense=embed(q), sparse=enc.encode_query("the of and"), mode="hybrid", limit=2),
    ]
    batched = store.search_many(requests)
    one_by_one = [store.search(r) for r in requests]
    assert [[(h.chunk.id, round(h.score, 5)) for h in hits] for hits in batched] == [
        [(h.chunk.id, round(h.score, 5)) for h in hits] for hits in one_by_one
    ]
    assert batched[2] == [] and len(batched[3]) == 2
    assert store.search_many([]) == []


def test_get_chunks_returns_what_was_written(filled: tuple[VectorStore, list[Chunk]]) -> None:
    store, chunks = filled
    wanted = [chunks[1].id, chunks[4].id, str(uuid.uuid4())]
    got = store.get_chunks(wanted)
    assert set(got) == {chunks[1].id, chunks[4].id}
    assert got[chunks[4].id].text == chunks[4].text and got[chunks[4].id].source == chunks[4].source
    assert store.get_chunks([]) == {}


def test_a_server_answers_search_many_in_one_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search is one call to the server (no existence check first), a batch of them too."""
    s = _open("memory", tmp_path)
    fill(s)
    calls: list[str] = []
    for name in ("query_points", "query_batch_points", "collection_exists", "get_collection"):
        real = getattr(s.client, name)
        monkeypatch.setattr(s.client, name, lambda *a, _n=name, _f=real, **k: calls.append(_n) or _f(*a, **k))
    enc = Bm25SparseEncoder()
    s.search(SearchRequest(dense=embed("cells"), limit=2))
    assert calls == ["query_points"]
    calls.clear()
    dense_hits, sparse_hits = s.search_many(
        [
            SearchRequest(dense=embed("cells"), mode="dense", limit=2),
            SearchRequest(sparse=enc.encode_query("mitochondria"), mode="sparse", limit=2),
        ]
    )
    assert calls == ["query_batch_points"] and dense_hits and sparse_hits
    s.close()


def test_deletes_and_incomplete_documents(store: VectorStore) -> None:
    chunks = fill(store)
    assert store.delete_chunks([chunks[0].id, str(uuid.uuid4())]) == 1
    assert store.documents()["doc0"].complete is False, "a document missing a chunk is seen as incomplete"
    assert store.delete_documents(["doc1", "nope"]) == 2
    assert store.delete_documents([]) == 0
    assert store.count() == len(chunks) - 3
    assert "doc1" not in store.documents()


def test_errors_say_what_to_do(store: VectorStore) -> None:
    with pytest.raises(InputError, match="ingest documents first"):
        store.search(SearchRequest(dense=embed("x")))
    with pytest.raises(InputError, match="ingest documents first"):
        store.search_many([SearchRequest(dense=embed("x"))])
    assert store.count() == 0 and store.documents() == {} and store.delete_documents(["d"]) == 0
    assert store.get_chunks([str(uuid.uuid4())]) == {}
    fill(store, sparse=False)
    with pytest.raises(InputError, match="no sparse vectors"):
        store.search(
            SearchRequest(dense=embed("x"), sparse=Bm25SparseEncoder().encode_query("cat"), mode="hybrid")
        )
    with pytest.raises(ConfigError, match="-d"):
        store.ensure_collection(DIM + 1, sparse=False, indexed_fields={})
    with pytest.raises(ConfigError, match="without sparse"):
        store.ensure_collection(DIM, sparse=True, indexed_fields={})
    with pytest.raises(InputError, match="must match"):
        store.upsert(make_chunks()[:2], np.zeros((1, DIM), dtype=np.float32))
    bad = make_chunks()[0]
    bad = Chunk(id=bad.id, doc_id="d", text="t", source="s", metadata={"text": "other"})
    with pytest.raises(InputError, match="collides"):
        store.upsert([bad], np.array([embed("t")], dtype=np.float32))


def test_edge_store_persists_and_is_single_process(tmp_path: Path) -> None:
    s = QdrantEdgeStore(tmp_path / "shard", "c")
    chunks = fill(s)
    s.close()
    with QdrantEdgeStore(tmp_path / "shard", "c") as again:
        assert again.count() == len(chunks)
        assert again.search(SearchRequest(dense=embed(TEXTS[3]), limit=1))[0].chunk == chunks[3]
        assert again.count(Condition("tenant", "eq", "b")) == 4
