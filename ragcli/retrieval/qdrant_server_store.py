"""A Qdrant server or cluster through qdrant-client, or its in-process stand-ins (`:memory:`, `path=`).

The stand-ins are qdrant-client's pure-Python local mode: the server's API and behaviour, slow at scale,
and no payload indexes (it ignores them). They let code written for a server be tested without one.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ragcli.errors import BackendError, ConfigError, InputError
from ragcli.retrieval.filters import Condition, Filter
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
    dense_of,
    group_documents,
    hybrid_depth,
    point_id,
)
from ragcli.retrieval.protocols import SearchRequest, StoredDocument
from ragcli.retrieval.qdrant_filters import to_client_filter
from ragcli.types import Chunk, Hit, SparseVector, Vectors

log = logging.getLogger(__name__)


class QdrantServerStore:
    """A collection on a Qdrant server (by `url`) or in qdrant-client's local mode (`location`/`path`).

    Args:
        collection: The collection's name.
        url: `http(s)://host:port` of a server or cluster.
        api_key: The key for that server (read it from an environment variable, never from YAML).
        location: `":memory:"` for the in-process stand-in.
        path: A folder for the persisted local stand-in.
        timeout_s: Request timeout against a server.
    """

    def __init__(
        self,
        collection: str,
        *,
        url: str | None = None,
        api_key: str | None = None,
        location: str | None = None,
        path: str | os.PathLike[str] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        given = [name for name, v in (("url", url), ("location", location), ("path", path)) if v]
        if len(given) != 1:
            raise ConfigError(
                f"QdrantServerStore needs exactly one of url, location or path, got {given or 'none'}; "
                "e.g. url='http://localhost:6333', or location=':memory:' for tests"
            )
        if not collection:
            raise ConfigError("QdrantServerStore needs a collection name, got an empty string")
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be positive, got {timeout_s}")
        self.collection = collection
        self.url = url
        self.local = url is None
        self._args: dict[str, Any] = (
            {"url": url, "api_key": api_key, "timeout": int(timeout_s)}
            if url
            else ({"location": location} if location else {"path": str(path)})
        )
        self._client: Any = None
        self._has_sparse: bool | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from qdrant_client import QdrantClient

            try:
                self._client = QdrantClient(**self._args)
            except Exception as exc:
                where = self.url or self._args.get("location") or self._args.get("path")
                raise BackendError(f"could not open Qdrant at {where!r}: {exc}") from exc
        return self._client

    def _where(self) -> str:
        return self.url or str(self._args.get("location") or self._args.get("path"))

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, InputError):
            raise
        except Exception as exc:
            raise BackendError(
                f"Qdrant {what} on collection {self.collection!r} at {self._where()} failed: {exc}",
                retryable=not self.local,
            ) from exc

    def _exists(self) -> bool:
        return bool(self._call("collection_exists", self.client.collection_exists, self.collection))

    def _sparse_enabled(self) -> bool:
        if self._has_sparse is None:
            info = self._call("get_collection", self.client.get_collection, self.collection)
            self._has_sparse = SPARSE in (info.config.params.sparse_vectors or {})
        return self._has_sparse

    # ---------------------------------------------------------------- lifecycle

    def ensure_collection(self, dim: int, *, sparse: bool, indexed_fields: dict[str, str]) -> None:
        """Create the collection if missing, check `dim` and `sparse`, and index the declared fields."""
        from qdrant_client import models as m

        to_index = check_collection_args(dim, indexed_fields)
        if self._exists():
            info = self._call("get_collection", self.client.get_collection, self.collection)
            vectors = info.config.params.vectors
            have = vectors.get(DENSE) if isinstance(vectors, dict) else None
            if have is None or int(have.size) != dim:
                raise ConfigError(
                    f"collection {self.collection!r} at {self._where()} does not hold {dim}-d vectors named "
                    f"{DENSE!r} (found {vectors}); use another collection name"
                )
            if sparse and SPARSE not in (info.config.params.sparse_vectors or {}):
                raise ConfigError(
                    f"collection {self.collection!r} was created without sparse vectors but ingest.sparse is "
                    "true; use a new collection name and ingest again"
                )
            schema = set((info.payload_schema or {}).keys())
        else:
            self._call(
                "create_collection",
                self.client.create_collection,
                self.collection,
                vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE)},
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)}
                if sparse
                else None,
            )
            schema = set()
            log.info(
                "created Qdrant collection %s at %s (dim=%d, sparse=%s)",
                self.collection,
                self._where(),
                dim,
                sparse,
            )
        self._has_sparse = None
        kinds = {
            "keyword": m.PayloadSchemaType.KEYWORD,
            "integer": m.PayloadSchemaType.INTEGER,
            "float": m.PayloadSchemaType.FLOAT,
            "bool": m.PayloadSchemaType.BOOL,
        }
        with warnings.catch_warnings():
            # local mode warns that it ignores payload indexes: true, and harmless for a stand-in
            warnings.simplefilter("ignore", UserWarning)
            for name, kind in to_index.items():
                if name not in schema:
                    self._call(
                        "create_payload_index",
                        self.client.create_payload_index,
                        self.collection,
                        name,
                        kinds[kind],
                    )

    def optimize(self) -> None:
        """Nothing to do: a Qdrant server's optimizers compact segments in the background."""

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def __enter__(self) -> QdrantServerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writes

    def upsert(
        self, chunks: Sequence[Chunk], dense: Vectors, sparse: Sequence[SparseVector] | None = None
    ) -> None:
        from qdrant_client import models as m

        check_upsert_args(chunks, dense, sparse)
        if not chunks:
            return
        check_upsert_target(
            self.collection,
            exists=self._exists(),
            sparse_given=sparse is not None,
            has_sparse=self._sparse_enabled,
        )
        for batch in batches(len(chunks)):
            points = []
            for i in batch:
                vector: dict[str, Any] = {DENSE: dense_list(dense[i])}
                if sparse is not None and sparse[i].indices:
                    vector[SPARSE] = m.SparseVector(
                        indices=list(sparse[i].indices), values=list(sparse[i].values)
                    )
                points.append(
                    m.PointStruct(id=point_id(chunks[i].id), vector=vector, payload=chunk_payload(chunks[i]))
                )
            self._call("upsert", self.client.upsert, self.collection, points=points, wait=True)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        from qdrant_client import models as m

        if not doc_ids or not self._exists():
            return 0
        flt = to_client_filter(Condition("doc_id", "in", tuple(doc_ids)))
        n = int(self._call("count", self.client.count, self.collection, count_filter=flt, exact=True).count)
        if n:
            self._call(
                "delete",
                self.client.delete,
                self.collection,
                points_selector=m.FilterSelector(filter=flt),
                wait=True,
            )
        return n

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        from qdrant_client import models as m

        if not chunk_ids or not self._exists():
            return 0
        ids = [point_id(c) for c in chunk_ids]
        present = self._call("retrieve", self.client.retrieve, self.collection, ids=ids, with_payload=False)
        if present:
            selector = m.PointIdsList(points=[p.id for p in present])
            self._call("delete", self.client.delete, self.collection, points_selector=selector, wait=True)
        return len(present)

    # ---------------------------------------------------------------- reads

    def _scroll(self, fields: list[str]) -> Iterator[tuple[object, dict[str, Any] | None]]:
        if not self._exists():
            return
        offset = None
        while True:
            records, offset = self._call(
                "scroll",
                self.client.scroll,
                self.collection,
                limit=1024,
                offset=offset,
                with_payload=fields,
                with_vectors=False,
            )
            for r in records:
                yield r.id, r.payload
            if offset is None:
                break

    def documents(self) -> dict[str, StoredDocument]:
        return group_documents(self._scroll(DOC_FIELDS))

    def count(self, filter: Filter | None = None) -> int:
        if not self._exists():
            return 0
        flt = to_client_filter(filter)
        return int(
            self._call("count", self.client.count, self.collection, count_filter=flt, exact=True).count
        )

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        if not chunk_ids or not self._exists():
            return {}
        records = self._call(
            "retrieve",
            self.client.retrieve,
            self.collection,
            [point_id(c) for c in chunk_ids],
            with_payload=True,
        )
        chunks = (chunk_from_payload(r.id, r.payload) for r in records)
        return {c.id: c for c in chunks}

    def dense_vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        if not chunk_ids or not self._exists():
            return {}
        by_point = {point_id(c): c for c in chunk_ids}
        records = self._call(
            "retrieve",
            self.client.retrieve,
            self.collection,
            list(by_point),
            with_payload=False,
            with_vectors=[DENSE],
        )
        return {by_point[str(r.id)]: dense_of(r.vector) for r in records if str(r.id) in by_point}

    def search(self, request: SearchRequest) -> list[Hit]:
        """Dense, sparse or hybrid (RRF over a dense and a sparse prefetch) search, filtered."""
        with self._collection_needed():
            query = self._query_request(request)
            if query is None:
                return []
            response = self._call(
                "query_points",
                self.client.query_points,
                self.collection,
                query=query.query,
                using=query.using,
                prefetch=query.prefetch,
                query_filter=query.filter,
                limit=query.limit,
                with_payload=True,
            )
        return _hits(response.points)

    def search_many(self, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
        """Several searches in one round trip (`query_batch_points`), results in request order: what a trained
        fusion's separate dense and BM25 searches cost on a server."""
        with self._collection_needed():
            queries = [self._query_request(r) for r in requests]
            batch = [q for q in queries if q is not None]
            responses = iter(
                self._call(
                    "query_batch_points", self.client.query_batch_points, self.collection, requests=batch
                )
                if batch
                else []
            )
            return [[] if q is None else _hits(next(responses).points) for q in queries]

    @contextmanager
    def _collection_needed(self) -> Iterator[None]:
        """A search on a missing collection says so (checked only after a failure: a search is one round trip)."""
        try:
            yield
        except BackendError as exc:
            if not self._exists():
                raise InputError(
                    f"collection {self.collection!r} does not exist at {self._where()}; ingest documents first "
                    "(ragcli ingest PATH --collection NAME)"
                ) from exc
            raise

    def _query_request(self, request: SearchRequest) -> Any:
        """The request as the client's `QueryRequest`; None when it cannot match anything (a sparse search
        whose query has no terms). A hybrid query with no sparse terms falls back to dense alone."""
        from qdrant_client import models as m

        flt = to_client_filter(request.filter)
        check_search_request(request, self.collection, self._sparse_enabled)
        dense_q = dense_list(request.dense) if request.dense is not None else None
        sparse_q = None
        if request.mode in ("sparse", "hybrid") and request.sparse is not None:
            if not request.sparse.indices:
                return None if request.mode == "sparse" else self._query_request(as_dense(request))
            sparse_q = m.SparseVector(
                indices=list(request.sparse.indices), values=list(request.sparse.values)
            )
        if request.mode == "hybrid":
            depth = hybrid_depth(request)
            # the filter goes on every prefetch as well as on the fusion, so no stage ever sees other tenants
            return m.QueryRequest(
                prefetch=[
                    m.Prefetch(query=dense_q, using=DENSE, limit=depth, filter=flt),
                    m.Prefetch(query=sparse_q, using=SPARSE, limit=depth, filter=flt),
                ],
                query=m.RrfQuery(rrf=m.Rrf(k=request.rrf_k)),
                filter=flt,
                limit=request.limit,
                with_payload=True,
            )
        return m.QueryRequest(
            query=dense_q if request.mode == "dense" else sparse_q,
            using=DENSE if request.mode == "dense" else SPARSE,
            filter=flt,
            limit=request.limit,
            with_payload=True,
        )


def _hits(points: Sequence[Any]) -> list[Hit]:
    return [Hit(chunk_from_payload(p.id, p.payload), float(p.score)) for p in points]
