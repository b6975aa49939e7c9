"""Config sections -> retrieval stage objects: the store, the sparse encoder, a trained fusion, the reranker.

Heavy libraries are imported inside the adapters, so building a config is cheap until a stage is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.config import (
    CrossEncoderRerankerConfig,
    FlagRerankerConfig,
    PipelineConfig,
    QdrantEdgeStoreConfig,
    QdrantStoreConfig,
)
from ragcli.errors import ConfigError
from ragcli.retrieval.protocols import Reranker, SparseEncoder, VectorStore

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ragcli.retrieval.fusion import LearnedFusion
    from ragcli.retrieval.sentence_vectors import SentenceVectors


def edge_store_path(cfg: PipelineConfig, collection: str | None = None) -> Path:
    """The shard folder of a collection: `<store.path or home/qdrant>/<collection>`."""
    store = cfg.store
    base = Path(store.path).expanduser() if isinstance(store, QdrantEdgeStoreConfig) and store.path else None
    return (base or cfg.home_dir() / "qdrant") / (collection or cfg.collection)


def build_store(cfg: PipelineConfig, collection: str | None = None) -> VectorStore:
    """The configured store for `collection` (default: the config's collection)."""
    name = collection or cfg.collection
    store = cfg.store
    if isinstance(store, QdrantEdgeStoreConfig):
        from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore

        return QdrantEdgeStore(edge_store_path(cfg, name), name, lock_timeout_s=store.lock_timeout_s)
    if isinstance(store, QdrantStoreConfig):
        from ragcli.retrieval.qdrant_server_store import QdrantServerStore

        api_key = None
        if store.api_key_env:
            api_key = os.environ.get(store.api_key_env)
            if not api_key:
                raise ConfigError(
                    f"store.api_key_env names the environment variable {store.api_key_env!r}, which is not "
                    "set; "
                    f"export {store.api_key_env}=<your Qdrant API key>, or remove api_key_env for a server "
                    "without auth"
                )
        if store.url is None and store.location is None and store.path is None:
            raise ConfigError(
                "store (type: qdrant) needs one of url (a server), location (':memory:') "
                "or path (a local folder)"
            )
        return QdrantServerStore(
            name,
            url=store.url,
            api_key=api_key,
            location=store.location,
            path=Path(store.path).expanduser() if store.path else None,
            timeout_s=store.timeout_s,
        )
    raise ConfigError(f"unknown store type {getattr(store, 'type', store)!r}; use qdrant_edge or qdrant")


def build_sparse_encoder(cfg: PipelineConfig) -> SparseEncoder | None:
    """A BM25 encoder when ingest writes sparse vectors or retrieval searches them; else None."""
    if not (cfg.ingest.sparse or cfg.retrieval.mode in ("sparse", "hybrid")):
        return None
    from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder

    bm = cfg.retrieval.bm25
    return Bm25SparseEncoder(k=bm.k, b=bm.b, avg_len=bm.avg_len, language=bm.language)


def build_sentence_vectors(cfg: PipelineConfig, embedder: Any) -> SentenceVectors:
    """Sentence vectors by the collection's embedder, kept in `<home>/sentence_vectors.sqlite`.

    Raises:
        ConfigError: the embedder is a paid API: every new candidate's sentences would be billed per query.
    """
    from ragcli.config import OpenAIEmbedderConfig
    from ragcli.retrieval.sentence_vectors import SentenceVectors

    if isinstance(cfg.embedder, OpenAIEmbedderConfig):
        raise ConfigError(
            f"retrieval.fusion {cfg.retrieval.fusion!r} reads sentence features, which embed the candidates' "
            f"sentences with the collection's embedder; {cfg.embedder.model!r} is a paid API: use a fusion trained "
            "without --sentences, or a local embedder"
        )
    return SentenceVectors(embedder, cfg.home_dir() / "sentence_vectors.sqlite")


def build_fusion(cfg: PipelineConfig) -> LearnedFusion | None:
    """The trained fusion `retrieval.fusion` names, or None for `rrf` (the store's own fusion)."""
    if cfg.retrieval.fusion == "rrf":
        return None
    from ragcli.retrieval.fusion import load_fusion

    fusion = load_fusion(cfg.retrieval.fusion, cfg.home_dir())
    trained_with = fusion.card.get("embedder", {}).get("model")
    model = getattr(cfg.embedder, "model", None)
    if trained_with and model and trained_with != model:
        log.warning(
            "fusion %r was trained on %s's scores but the config embeds with %s: its weights may not fit; "
            "train one for this embedder with `ragcli train fusion`, or set retrieval.fusion: rrf",
            cfg.retrieval.fusion,
            trained_with,
            model,
        )
    return fusion


def build_reranker(cfg: PipelineConfig) -> Reranker | None:
    """The configured reranker, or None for `type: none`.

    A reranker that cannot be found raises `ResourceMissing` here or on first use, naming the model and the
    fix: a configured stage is never skipped silently.
    """
    rr = cfg.reranker
    if isinstance(rr, CrossEncoderRerankerConfig):
        from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker

        return CrossEncoderReranker(
            rr.model,
            top_n=rr.top_n,
            min_score=rr.min_score,
            dedupe_threshold=rr.dedupe_threshold,
            batch_size=rr.batch_size,
            max_length=rr.max_length,
            home=cfg.home_dir(),
            backend=rr.backend,
        )
    if isinstance(rr, FlagRerankerConfig):
        from ragcli.retrieval.flag_embedding_reranker import FlagEmbeddingReranker

        return FlagEmbeddingReranker(
            rr.model,
            top_n=rr.top_n,
            min_score=rr.min_score,
            dedupe_threshold=rr.dedupe_threshold,
            batch_size=rr.batch_size,
            max_length=rr.max_length,
            use_fp16=rr.use_fp16,
            home=cfg.home_dir(),
        )
    return None
