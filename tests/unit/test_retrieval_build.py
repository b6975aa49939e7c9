"""Config -> store, sparse encoder and reranker; every error names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.errors import ConfigError, ResourceMissing
from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
from ragcli.retrieval.build import build_reranker, build_sparse_encoder, build_store, edge_store_path
from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore
from ragcli.retrieval.qdrant_server_store import QdrantServerStore


def test_default_store_is_an_edge_shard_under_home(tmp_path: Path) -> None:
    cfg = parse_config({"collection": "docs"})
    store = build_store(cfg)
    assert isinstance(store, QdrantEdgeStore)
    assert store.path == tmp_path / "ragcli-home" / "qdrant" / "docs"
    assert build_store(cfg, "other").path == tmp_path / "ragcli-home" / "qdrant" / "other"  # type: ignore[attr-defined]
    custom = parse_config(
        {"collection": "docs", "store": {"type": "qdrant_edge", "path": str(tmp_path / "x")}}
    )
    assert edge_store_path(custom) == tmp_path / "x" / "docs"


def test_server_store_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    mem = build_store(parse_config({"store": {"type": "qdrant", "location": ":memory:"}}))
    assert isinstance(mem, QdrantServerStore) and mem.local
    monkeypatch.setenv("MY_QDRANT_KEY", "secret")
    remote = build_store(parse_config({"store": {"type": "qdrant", "url": "http://localhost:6333",
                                                 "api_key_env": "MY_QDRANT_KEY"}}))  # fmt: skip
    assert isinstance(remote, QdrantServerStore) and not remote.local
    assert "secret" not in repr(remote.__dict__.get("collection"))


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"type": "qdrant"}, "needs one of url (a server), location (':memory:') or path (a local folder)"),
        (
            {"type": "qdrant", "url": "http://h:6333", "api_key_env": "NOPE_KEY"},
            "store.api_key_env names the environment variable 'NOPE_KEY', which is not set; export NOPE_KEY=",
        ),
    ],
)
def test_store_config_errors(store: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        build_store(parse_config({"store": store}))
    assert message in str(info.value)


def test_server_store_constructor_errors() -> None:
    with pytest.raises(ConfigError, match="exactly one of url, location or path, got none"):
        QdrantServerStore("c")
    with pytest.raises(ConfigError, match=r"got \['url', 'location'\]"):
        QdrantServerStore("c", url="http://h", location=":memory:")
    with pytest.raises(ConfigError, match="collection name"):
        QdrantServerStore("", location=":memory:")
    with pytest.raises(ConfigError, match="collection name"):
        QdrantEdgeStore(Path("x"), "")


def test_sparse_encoder_only_when_needed() -> None:
    assert build_sparse_encoder(parse_config({})) is None
    assert isinstance(build_sparse_encoder(parse_config({"ingest": {"sparse": True}})), Bm25SparseEncoder)
    enc = build_sparse_encoder(parse_config({"retrieval": {"mode": "hybrid", "bm25": {"avg_len": 300}}}))
    assert isinstance(enc, Bm25SparseEncoder) and enc.avg_len == 300
    doc, query = enc.encode(["Cats chase mice"])[0], enc.encode_query("cat")
    assert set(query.indices) <= set(doc.indices), "stemming maps cat/cats to one term"
    assert query.values == [1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": -1}, "bm25 k must be >= 0"), ({"b": 2}, "between 0 and 1"), ({"avg_len": 0}, "must be positive")],
)
def test_bm25_settings_are_validated(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Bm25SparseEncoder(**kwargs)  # type: ignore[arg-type]


def test_bm25_unknown_language() -> None:
    with pytest.raises(ConfigError, match="invalid BM25 settings"):
        Bm25SparseEncoder(language="klingon").encode_query("x")


def test_reranker_none_and_missing_trained_model() -> None:
    assert build_reranker(parse_config({})) is None
    for kind in ("cross_encoder", "flag"):
        cfg = parse_config({"reranker": {"type": kind, "model": "trained:scifact"}})
        with pytest.raises(ResourceMissing) as info:
            build_reranker(cfg)
        text = str(info.value)
        assert "reranker 'trained:scifact' not found" in text
        assert "(trained rerankers: none yet)" in text
        assert "ragcli train reranker --pairs FILE --name scifact" in text


def test_reranker_by_hub_id_is_resolved_lazily() -> None:
    rr = build_reranker(
        parse_config({"reranker": {"type": "cross_encoder", "model": "BAAI/bge-reranker-base"}})
    )
    assert rr is not None and rr.model_name == "BAAI/bge-reranker-base"
