"""How a chunk is laid out in a Qdrant point, shared by every Qdrant back-end.

A point's id is the chunk's id (a UUID string; any other string is mapped to a stable UUID5 and kept in the
payload as `chunk_id`). The payload holds the chunk's own fields plus `chunk.metadata` flattened at the top
level, so a filter on `type` or `year` reads the field directly and a payload index can be built on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ragcli.errors import ConfigError, InputError
from ragcli.retrieval.protocols import SearchRequest, StoredDocument
from ragcli.types import Chunk, MetaValue, SparseVector, Vectors

DENSE = "dense"
"""Name of the dense vector in every collection."""
SPARSE = "sparse"
"""Name of the BM25-style sparse vector (present when the collection was created with `sparse=True`)."""

CORE_FIELDS = (
    "chunk_id",
    "doc_id",
    "text",
    "source",
    "section_path",
    "page",
    "ordinal",
    "tokens",
    "content_hash",
)
"""Payload keys that hold the chunk's own fields; everything else is user or ingest metadata."""

DOC_FIELDS = ["chunk_id", "doc_id", "source", "doc_hash", "doc_chunks"]
"""What `documents()` reads from each point."""

FIELD_TYPES = ("keyword", "integer", "float", "bool")
"""Payload index types a collection may declare in `indexed_fields`."""

BATCH = 256
"""Points sent per upsert request."""

_NAMESPACE = uuid.UUID("6f1c7d52-2b1e-4f0a-9a57-3c1f1b0e8d21")


def point_id(chunk_id: str) -> str:
    """The Qdrant point id of a chunk: the chunk id when it is a UUID, else a stable UUID5 of it."""
    try:
        return str(uuid.UUID(chunk_id))
    except ValueError:
        return str(uuid.uuid5(_NAMESPACE, chunk_id))


def chunk_payload(chunk: Chunk) -> dict[str, Any]:
    """The payload of one chunk: its fields, then its metadata flattened beside them.

    Raises:
        InputError: a metadata key collides with a chunk field and holds a different value.
    """
    payload: dict[str, Any] = {
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "text": chunk.text,
        "source": chunk.source,
        "section_path": list(chunk.section_path),
        "page": chunk.page,
        "ordinal": chunk.ordinal,
        "tokens": chunk.tokens,
        "content_hash": chunk.content_hash,
    }
    for key, value in chunk.metadata.items():
        if key in payload:
            if payload[key] == value:
                continue
            raise InputError(
                f"chunk {chunk.id} of {chunk.source}: metadata key {key!r} collides with the chunk "
                f"field of the same name (reserved: {', '.join(CORE_FIELDS)}); rename the metadata key"
            )
        payload[key] = value
    return payload


def chunk_from_payload(pid: object, payload: Mapping[str, Any] | None) -> Chunk:
    """Rebuild the chunk a point was written from."""
    data = dict(payload or {})
    metadata: dict[str, MetaValue] = {k: v for k, v in data.items() if k not in CORE_FIELDS}
    page = data.get("page")
    return Chunk(
        id=str(data.get("chunk_id") or pid),
        doc_id=str(data.get("doc_id", "")),
        text=str(data.get("text", "")),
        source=str(data.get("source", "")),
        section_path=tuple(str(s) for s in data.get("section_path") or ()),
        page=int(page) if page is not None else None,
        ordinal=int(data.get("ordinal") or 0),
        tokens=int(data.get("tokens") or 0),
        content_hash=str(data.get("content_hash", "")),
        metadata=metadata,
    )


def group_documents(points: Iterable[tuple[object, Mapping[str, Any] | None]]) -> dict[str, StoredDocument]:
    """Group `(point id, payload)` pairs by `doc_id` into `StoredDocument`s.

    `doc_hash` and `doc_chunks` come from the payload (the ingest pipeline writes them into every chunk's
    metadata); a document without `doc_chunks` counts as complete with the chunks it has.
    """
    chunks: dict[str, list[str]] = {}
    first: dict[str, Mapping[str, Any]] = {}
    for pid, payload in points:
        data = payload or {}
        doc_id = str(data.get("doc_id", ""))
        chunks.setdefault(doc_id, []).append(str(data.get("chunk_id") or pid))
        first.setdefault(doc_id, data)
    out: dict[str, StoredDocument] = {}
    for doc_id, ids in chunks.items():
        data = first[doc_id]
        expected = data.get("doc_chunks")
        out[doc_id] = StoredDocument(
            doc_id=doc_id,
            source=str(data.get("source", "")),
            content_hash=str(data.get("doc_hash", "")),
            expected_chunks=int(expected) if expected is not None else len(ids),
            chunk_ids=tuple(sorted(ids)),
        )
    return out


def check_collection_args(dim: int, indexed_fields: Mapping[str, str]) -> dict[str, str]:
    """Validate `ensure_collection`'s arguments; return every field to index, `doc_id` first.

    `doc_id` is always indexed: re-ingest deletes and groups by it.

    Raises:
        ConfigError: `dim` is not positive, or a field names an unknown index type.
    """
    if dim <= 0:
        raise ConfigError(f"vector dimension must be positive, got {dim}")
    bad = {k: v for k, v in indexed_fields.items() if v not in FIELD_TYPES}
    if bad:
        raise ConfigError(f"unknown payload index types {bad}; valid types: {', '.join(FIELD_TYPES)}")
    return {"doc_id": "keyword", **indexed_fields}


def check_upsert_args(chunks: Sequence[Chunk], dense: Vectors, sparse: Sequence[SparseVector] | None) -> None:
    """Check that `upsert` got one dense (and, if given, one sparse) vector per chunk.

    Raises:
        InputError: the counts differ.
    """
    if len(chunks) != len(dense):
        raise InputError(f"upsert got {len(chunks)} chunks but {len(dense)} dense vectors; they must match")
    if sparse is not None and len(sparse) != len(chunks):
        raise InputError(f"upsert got {len(chunks)} chunks but {len(sparse)} sparse vectors; they must match")


def check_upsert_target(
    collection: str, *, exists: bool, sparse_given: bool, has_sparse: Callable[[], bool]
) -> None:
    """Check that the collection exists and, when sparse vectors come, was created to hold them.

    `has_sparse` is only called when sparse vectors come, since asking may cost a request.

    Raises:
        InputError: the collection is missing, or has no sparse vectors for the ones given.
    """
    if not exists:
        raise InputError(
            f"collection {collection!r} does not exist yet; call ensure_collection(dim, ...) first"
        )
    if sparse_given and not has_sparse():
        raise InputError(
            f"collection {collection!r} has no sparse vectors; create it with sparse=True to store them"
        )


def batches(n: int) -> Iterator[range]:
    """The indexes of `n` points, `BATCH` at a time."""
    for start in range(0, n, BATCH):
        yield range(start, min(start + BATCH, n))


def dense_list(vector: Sequence[float]) -> list[float]:
    """A dense vector as the plain list of floats both Qdrant clients take."""
    return [float(x) for x in vector]


def dense_of(vector: Any) -> list[float]:
    """The dense part of a stored point's vectors as both Qdrant clients return them (a mapping by vector name,
    or the one unnamed vector)."""
    if isinstance(vector, Mapping):
        vector = vector[DENSE]
    return dense_list(vector)


def check_search_request(request: SearchRequest, collection: str, has_sparse: Callable[[], bool]) -> None:
    """Check that a search request carries the query vectors its mode needs and the collection can serve it.

    `has_sparse` is only called for a sparse or hybrid search.

    Raises:
        InputError: a vector the mode needs is missing, or the collection has no sparse vectors.
    """
    if request.mode in ("dense", "hybrid") and request.dense is None:
        raise InputError(f"a {request.mode} search needs a dense query vector")
    if request.mode in ("sparse", "hybrid"):
        if request.sparse is None:
            raise InputError(f"a {request.mode} search needs a sparse query vector")
        if not has_sparse():
            raise InputError(
                f"collection {collection!r} has no sparse vectors, so {request.mode!r} search is "
                "impossible; set ingest.sparse: true and re-ingest into a new collection, "
                "or use mode: dense"
            )


def as_dense(request: SearchRequest) -> SearchRequest:
    """A hybrid request whose query has no sparse terms (only stopwords) falls back to dense alone."""
    return replace(request, mode="dense", sparse=None)


def hybrid_depth(request: SearchRequest) -> int:
    """How many hits each prefetch of a hybrid search gathers before fusion."""
    return request.prefetch_limit or max(request.limit * 2, 20)
