"""The embedded default store: Qdrant's own Rust engine in-process (`qdrant-edge-py`), one shard per folder.

The shard keeps a write-ahead log, so a killed ingest loses nothing that `upsert` returned from. Only one
process may open a folder at a time (the engine locks its WAL); a second one gets a `BackendError` saying so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from ragcli.errors import BackendError, ConfigError, InputError
from ragcli.retrieval.filters import Filter
from ragcli.retrieval.payload import (
    DENSE,
    DOC_FIELDS,
    SPARSE,
    as_dense,
    batches,
    check_collection_args,
    check_search_request,
    check_upsert_args,
    check_upsert_target,
    chunk_from_payload,
    chunk_payload,
    dense_list,
    group_documents,
    hybrid_depth,
    point_id,
)
from ragcli.retrieval.protocols import SearchRequest, StoredDocument
from ragcli.retrieval.qdrant_filters import to_edge_filter
from ragcli.types import Chunk, Hit, SparseVector, Vectors

log = logging.getLogger(__name__)


class QdrantEdgeStore:
    """A collection of chunks in an embedded Qdrant shard at `path`.

    Args:
        path: The shard's folder (created on `ensure_collection`).
        collection: The collection's name, for messages.
    """

    def __init__(self, path: Path, collection: str) -> None:
        if not collection:
            raise ConfigError("QdrantEdgeStore needs a collection name, got an empty string")
        self.path = Path(path).expanduser()
        self.collection = collection
        self._shard: Any = None

    # ---------------------------------------------------------------- lifecycle

    def _exists(self) -> bool:
        return (self.path / "edge_config.json").is_file()

    def _stored_config(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.path / "edge_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data

    def _open(self, config: Any = None) -> Any:
        import qdrant_edge as q

        try:
            if self._exists():
                return q.EdgeShard.load(str(self.path), config)
            return q.EdgeShard.create(str(self.path), config)
        except Exception as exc:
            if "WouldBlock" in str(exc) or "lock" in str(exc).lower():
                raise BackendError(
                    f"the store {str(self.path)!r} is open in another process; qdrant-edge allows one "
                    "process per folder: wait for the other ragcli command to finish, or use a Qdrant server "
                    "(store: {type: qdrant, url: ...}) for concurrent access"
                ) from exc
            raise BackendError(f"could not open the Qdrant edge shard at {str(self.path)!r}: {exc}") from exc

    def _has_sparse(self) -> bool:
        return SPARSE in (self._stored_config().get("sparse_vectors") or {})

    def _require(self) -> Any:
        """The open shard; opens an existing one, never creates."""
        if self._shard is None:
            if not self._exists():
                return None
            self._shard = self._open()
        return self._shard

    def ensure_collection(self, dim: int, *, sparse: bool, indexed_fields: dict[str, str]) -> None:
        """Create the shard if missing, check it matches `dim` and `sparse`, and index the declared fields."""
        import qdrant_edge as q

        to_index = check_collection_args(dim, indexed_fields)
        if self._exists():
            stored = self._stored_config()
            have_dim = stored.get("vectors", {}).get(DENSE, {}).get("size")
            if have_dim is not None and int(have_dim) != dim:
                raise ConfigError(
                    f"collection {self.collection!r} at {str(self.path)!r} holds {have_dim}-d vectors but "
                    f"the embedder makes {dim}-d ones; use another collection name or delete that folder "
                    "to re-index"
                )
            if sparse and SPARSE not in (stored.get("sparse_vectors") or {}):
                raise ConfigError(
                    f"collection {self.collection!r} was created without sparse vectors but ingest.sparse is "
                    "true; use a new collection name (or delete its folder) and ingest again"
                )
            shard = self._require()
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            config = q.EdgeConfig(
                vectors={DENSE: q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine)},
                sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)}
                if sparse
                else None,
            )
            self._shard = shard = self._open(config)
            log.info("created Qdrant edge shard %s (dim=%d, sparse=%s)", self.path, dim, sparse)
        have = set(shard.info().payload_schema)
        schema = {
            "keyword": q.PayloadSchemaType.Keyword,
            "integer": q.PayloadSchemaType.Integer,
            "float": q.PayloadSchemaType.Float,
            "bool": q.PayloadSchemaType.Bool,
        }
        for name, kind in to_index.items():
            if name not in have:
                shard.update(q.UpdateOperation.create_field_index(name, schema[kind]))

    def close(self) -> None:
        if self._shard is not None:
            try:
                self._shard.flush()
                self._shard.close()
            finally:
                self._shard = None

    def __enter__(self) -> QdrantEdgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writes

    def upsert(
        self, chunks: Sequence[Chunk], dense: Vectors, sparse: Sequence[SparseVector] | None = None
    ) -> None:
        import qdrant_edge as q

        check_upsert_args(chunks, dense, sparse)
        if not chunks:
            return
        shard = self._require()
        check_upsert_target(
            self.collection,
            exists=shard is not None,
            sparse_given=sparse is not None,
            has_sparse=self._has_sparse,
        )
        for batch in batches(len(chunks)):
            points = []
            for i in batch:
                vector: dict[str, Any] = {DENSE: dense_list(dense[i])}
                if sparse is not None and sparse[i].indices:
                    vector[SPARSE] = q.SparseVector(list(sparse[i].indices), list(sparse[i].values))
                points.append(q.Point(point_id(chunks[i].id), vector, chunk_payload(chunks[i])))
            try:
                shard.update(q.UpdateOperation.upsert_points(points))
            except Exception as exc:
                raise BackendError(f"Qdrant edge upsert into {self.collection!r} failed: {exc}") from exc

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        from ragcli.retrieval.filters import Condition

        if not doc_ids:
            return 0
        shard = self._require()
        if shard is None:
            return 0
        import qdrant_edge as q

        flt = to_edge_filter(Condition("doc_id", "in", tuple(doc_ids)))
        n = int(shard.count(q.CountRequest(exact=True, filter=flt)))
        if n:
            shard.update(q.UpdateOperation.delete_points_by_filter(flt))
        return n

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        import qdrant_edge as q

        shard = self._require()
        if shard is None or not chunk_ids:
            return 0
        ids = [point_id(c) for c in chunk_ids]
        present = shard.retrieve(ids, with_payload=False, with_vector=False)
        if present:
            shard.update(q.UpdateOperation.delete_points([r.id for r in present]))
        return len(present)

    # ---------------------------------------------------------------- reads

    def _scroll(self, fields: list[str]) -> Iterator[tuple[object, dict[str, Any] | None]]:
        import qdrant_edge as q

        shard = self._require()
        if shard is None:
            return
        offset = None
        while True:
            records, offset = shard.scroll(
                q.ScrollRequest(offset=offset, limit=1024, with_payload=fields, with_vector=False)
            )
            for r in records:
                yield r.id, r.payload
            if offset is None:
                break

    def documents(self) -> dict[str, StoredDocument]:
        return group_documents(self._scroll(DOC_FIELDS))

    def count(self, filter: Filter | None = None) -> int:
        import qdrant_edge as q

        shard = self._require()
        if shard is None:
            return 0
        return int(shard.count(q.CountRequest(exact=True, filter=to_edge_filter(filter))))

    def search(self, request: SearchRequest) -> list[Hit]:
        """Dense, sparse or hybrid (RRF over a dense and a sparse prefetch) search, filtered."""
        import qdrant_edge as q

        shard = self._require()
        if shard is None:
            raise InputError(
                f"collection {self.collection!r} has no index at {str(self.path)!r}; ingest documents first "
                "(ragcli ingest PATH --collection NAME)"
            )
        flt = to_edge_filter(request.filter)
        check_search_request(request, self.collection, self._has_sparse)
        dense_q = sparse_q = None
        if request.mode in ("dense", "hybrid") and request.dense is not None:
            dense_q = q.Query.Nearest(dense_list(request.dense), using=DENSE)
        if request.mode in ("sparse", "hybrid") and request.sparse is not None:
            sparse_q = q.Query.Nearest(
                q.SparseVector(list(request.sparse.indices), list(request.sparse.values)), using=SPARSE
            )
            if not request.sparse.indices:
                return [] if request.mode == "sparse" else self.search(as_dense(request))
        if request.mode == "hybrid":
            depth = hybrid_depth(request)
            # the filter goes on every prefetch as well as on the fusion, so no stage ever sees other tenants
            query = q.QueryRequest(
                limit=request.limit,
                prefetches=[
                    q.Prefetch(limit=depth, query=dense_q, filter=flt),
                    q.Prefetch(limit=depth, query=sparse_q, filter=flt),
                ],
                query=cast(Any, q.Fusion.Rrf(k=request.rrf_k)),  # the stub types Rrf as not a Fusion
                filter=flt,
                with_payload=True,
            )
        else:
            query = q.QueryRequest(
                limit=request.limit, query=dense_q or sparse_q, filter=flt, with_payload=True
            )
        try:
            points = shard.query(query)
        except Exception as exc:
            raise BackendError(f"Qdrant edge search in {self.collection!r} failed: {exc}") from exc
        return [Hit(chunk_from_payload(p.id, p.payload), float(p.score)) for p in points]
