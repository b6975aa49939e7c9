"""The `cache:` config section -> an `AnswerCache`; the scope of a query; the hook a re-ingest calls.

`invalidate_cited(cfg, chunk_ids, doc_ids)` is what the ingest pipeline calls when it replaces or removes
chunks: it opens only the metadata (never the vector collection, which another process may hold), so it is
cheap and safe during an ingest. The orphaned vector points it leaves are ignored by lookups (the
metadata decides) and removed by the next `clear` or invalidation made through an open cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.config import PipelineConfig
from ragcli.errors import ResourceMissing
from ragcli.generation.answer_cache import AnswerCache
from ragcli.generation.cache_protocols import CacheScope, PairVerifier
from ragcli.generation.sqlite_cache_store import SqlCacheStore, SqliteCacheStore
from ragcli.ingest.protocols import Embedder
from ragcli.retrieval.filters import Filter
from ragcli.retrieval.protocols import VectorStore

if TYPE_CHECKING:
    from ragcli.state.postgres_database import PostgresDatabase

log = logging.getLogger(__name__)


def cache_db_path(cfg: PipelineConfig) -> Path:
    """The cache's SQLite file: `cache.db`, or `<home>/answer_cache.sqlite`."""
    return Path(cfg.cache.db).expanduser() if cfg.cache.db else cfg.home_dir() / "answer_cache.sqlite"


def open_cache_meta(cfg: PipelineConfig, db: PostgresDatabase | None = None) -> SqlCacheStore:
    """The cache's entry metadata: in the PostgreSQL state when `state.dsn_env` is set (shared by every host),
    else the SQLite file `cache_db_path` (created when missing).

    Args:
        db: the state database a `Stages` already holds (used, not closed); without it one is opened for the
            store alone and closed with it.
    """
    from ragcli.state.build import state_dsn_env

    dsn_env = state_dsn_env(cfg)
    if dsn_env:
        from ragcli.state.postgres_cache_store import PostgresCacheStore
        from ragcli.state.postgres_database import PostgresDatabase, dsn_from_env

        if db is not None:
            return PostgresCacheStore(db)
        return PostgresCacheStore(PostgresDatabase(dsn_from_env(dsn_env), max_connections=4), owned=True)
    return SqliteCacheStore(cache_db_path(cfg))


def existing_cache_meta(cfg: PipelineConfig, db: PostgresDatabase | None = None) -> SqlCacheStore | None:
    """`open_cache_meta`, or `None` when the cache has never been used here (no SQLite file: none is created)."""
    from ragcli.state.build import state_dsn_env

    if not state_dsn_env(cfg) and not cache_db_path(cfg).is_file():
        return None
    return open_cache_meta(cfg, db)


def pipeline_version(cfg: PipelineConfig) -> str:
    """A digest of every config section that changes an answer: a new prompt or packer is a new key space."""
    parts = {
        "embedder": cfg.embedder.model_dump(mode="json"),
        "retrieval": cfg.retrieval.model_dump(mode="json"),
        "reranker": cfg.reranker.model_dump(mode="json"),
        "packing": cfg.packing.model_dump(mode="json"),
        "prompt": cfg.prompt.model_dump(mode="json"),
        "filterable": cfg.filterable,
        "cache_version": cfg.cache.version,
    }
    for extra in ("compression",):  # sections other issues add; present or not, the key follows them
        section = getattr(cfg, extra, None)
        if section is not None and hasattr(section, "model_dump"):
            parts[extra] = section.model_dump(mode="json")
    parts["trained_versions"] = _trained_versions(cfg)
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _trained_versions(cfg: PipelineConfig) -> dict[str, str | None]:
    """The weights' ids of the `trained:NAME` models the config names: re-training one under the same name
    changes what is retrieved or sent, so its answers get a new key space too."""
    from ragcli.trained_models import TRAINED_PREFIX, Kind, model_version, trained_dir

    named: list[tuple[Kind, str]] = [("fusions", cfg.retrieval.fusion)]
    model = getattr(cfg.reranker, "model", None)
    if isinstance(model, str):
        named.append(("rerankers", model))
    compressed: list[tuple[Kind, str | None]] = [
        ("sentence_models", cfg.packing.sentence_model),
        ("unit_models", getattr(cfg.compression, "unit_model", None)),
    ]
    named += [(kind, spec) for kind, spec in compressed if isinstance(spec, str)]
    return {
        f"{kind}:{spec}": model_version(trained_dir(kind, cfg.home_dir()) / spec[len(TRAINED_PREFIX) :], kind)
        for kind, spec in named
        if spec.startswith(TRAINED_PREFIX)
    }


def filter_key(flt: Filter | None) -> str:
    """A filter's canonical text: the frozen dataclasses' repr is deterministic (tuples, no sets)."""
    return "" if flt is None else repr(flt)


def cache_scope(
    cfg: PipelineConfig, *, tenant: Filter | None, effective: Filter | None, model: str, tenant_id: str = ""
) -> CacheScope:
    """The scope of a query: collection, tenant, effective filter, pipeline version and model tier."""
    tenant_text = filter_key(tenant)
    if tenant_id:
        tenant_text = f"{tenant_id}|{tenant_text}"
    return CacheScope(
        collection=cfg.collection,
        tenant=tenant_text,
        filter=filter_key(effective),
        pipeline=pipeline_version(cfg),
        model=model,
    )


def load_verifier(cfg: PipelineConfig, embedder: Embedder | None = None) -> PairVerifier | None:
    """The verifier the config names (or the one trained last); None when none is trained and none is named.

    Raises:
        ResourceMissing: `cache.verifier` names a verifier that does not exist.
    """
    from ragcli.generation.cache_verifier import open_verifier, resolve_verifier

    try:
        folder = resolve_verifier(cfg.home_dir(), cfg.cache.verifier)
    except ResourceMissing:
        if cfg.cache.verifier is not None:
            raise
        log.warning(
            "no cache verifier trained under %s: the answer cache serves exact repeats only", cfg.home_dir()
        )
        return None
    verifier = open_verifier(folder, embedder=embedder)
    target = verifier.card.get("calibration", {}).get("target_precision")
    if target is not None and abs(float(target) - cfg.cache.target_precision) > 1e-9:
        log.warning(
            "cache verifier %s was calibrated for precision %s but cache.target_precision is %s; "
            "run `ragcli cache calibrate --pairs FILE` to recalibrate",
            verifier.name,
            target,
            cfg.cache.target_precision,
        )
    return verifier


def build_answer_cache(
    cfg: PipelineConfig,
    embedder: Embedder,
    *,
    index: VectorStore | None = None,
    db: PostgresDatabase | None = None,
) -> AnswerCache:
    """The configured answer cache over the configured store type (its own collection) and its metadata
    (`open_cache_meta`)."""
    from ragcli.retrieval.build import build_store

    c = cfg.cache
    verifier = load_verifier(cfg, embedder) if c.semantic == "verifier" else None
    return AnswerCache(
        open_cache_meta(cfg, db),
        index or build_store(cfg, c.collection),
        embedder,
        verifier=verifier,
        cosine_threshold=c.cosine_threshold if c.semantic == "cosine" else None,
        ttl_s=c.ttl_s,
        candidates=c.candidates,
    )


def invalidate_cited(
    cfg: PipelineConfig,
    chunk_ids: Sequence[str] = (),
    doc_ids: Sequence[str] = (),
    *,
    db: PostgresDatabase | None = None,
) -> int:
    """Drop cached answers that cited any of these chunks or documents (the ingest pipeline's hook).

    Cheap when there is no cache file: nothing is created. With the PostgreSQL state it always looks: another
    host's cached answers may cite these chunks; pass the ingest's own state database as `db`, or every replaced
    document would open (and migrate) a connection of its own.
    """
    if not chunk_ids and not doc_ids:
        return 0
    meta = existing_cache_meta(cfg, db)
    if meta is None:
        return 0
    with meta:
        dropped = meta.delete_citing(chunk_ids, doc_ids)
    if dropped:
        log.info("answer cache: dropped %d entries citing replaced or removed chunks", len(dropped))
    return len(dropped)
