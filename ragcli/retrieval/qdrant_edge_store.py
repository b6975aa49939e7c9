"""The embedded default store: Qdrant's own Rust engine in-process (`qdrant-edge-py`), one shard per folder.

The shard keeps a write-ahead log, so a killed ingest loses nothing that `upsert` returned from. Only one
process may open a folder at a time, even to read: the engine locks its WAL, and qdrant-edge-py 0.9 has no
read-only open (`EdgeShard.load(path, config)` is the only way in). A second process waits for the folder, up to
`lock_timeout_s` (config `store.lock_timeout_s`), saying so once through `on_wait`, then gets a `BackendError`
that names the folder and the fix (a Qdrant server for concurrent use). `open()` takes the folder early, so a
command finds a busy store before it spends seconds loading models.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
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
    dense_of,
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
        lock_timeout_s: How long to wait for a folder that another process holds open (0: fail at once).
        on_wait: Called once with a sentence when the folder is busy and this store starts waiting
            (default: a log warning). The CLI prints it.
    """

    def __init__(
        self,
        path: Path,
        collection: str,
        *,
        lock_timeout_s: float = 30.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        if not collection:
            raise ConfigError("QdrantEdgeStore needs a collection name, got an empty string")
        if collection in (".", "..") or "/" in collection or "\\" in collection:
            raise ConfigError(
                f"collection {collection!r} would name a folder outside the store; use a plain name"
            )
        if not 0 <= lock_timeout_s <= 86400:
            raise ConfigError(f"lock_timeout_s must be between 0 and 86400 seconds, got {lock_timeout_s}")
        self.path = Path(path).expanduser()
        self.collection = collection
        self.lock_timeout_s = lock_timeout_s
        self.on_wait = on_wait
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
        """Open (or create) the shard, waiting up to `lock_timeout_s` while another process holds it."""
        import qdrant_edge as q

        deadline = time.monotonic() + self.lock_timeout_s
        waited = False
        while True:
            try:
                if self._exists():
                    return q.EdgeShard.load(str(self.path), config)
                return q.EdgeShard.create(str(self.path), config)
            except Exception as exc:
                if not _is_lock_error(exc):
                    raise BackendError(
                        f"could not open the Qdrant edge shard at {str(self.path)!r}: {exc}"
                    ) from exc
                left = deadline - time.monotonic()
                holder = _lock_holder(self.path / "wal")
                if left <= 0:
                    waited_for = f" after waiting {self.lock_timeout_s:g} s" if waited else ""
                    raise BackendError(
                        f"the store {str(self.path)!r} is open in another process{holder}{waited_for}; the embedded "
                        "engine allows one process per collection folder, even for reading: let the other "
                        "ragcli command (an ingest, a query, an idle chat) finish, raise store.lock_timeout_s, "
                        "or use a Qdrant server (store: {type: qdrant, url: ...}) for concurrent access"
                    ) from exc
                if not waited:
                    waited = True
                    self._say(
                        f"the store {str(self.path)!r} is open in another process{holder}; waiting up to "
                        f"{self.lock_timeout_s:g} s for it (store.lock_timeout_s)"
                    )
                time.sleep(min(0.2, left))

    def _say(self, message: str) -> None:
        if self.on_wait is not None:
            self.on_wait(message)
        else:
            log.warning("%s", message)

    def open(self) -> bool:
        """Open an existing shard now, waiting for another process to release it; False when there is none yet.

        Commands call it before loading models, so a busy store is reported (and waited for) first.
        """
        return self._require() is not None

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

    def optimize(self) -> None:
        """Merge the engine's segments and build its index (at 100k chunks: search ~2x faster, see
        benchmarks/results/ingest.md); the embedded engine only does this when asked."""
        if self._exists() or self._shard is not None:
            self._require().optimize()

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

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        shard = self._require()
        if shard is None or not chunk_ids:
            return {}
        records = shard.retrieve([point_id(c) for c in chunk_ids], True, False)
        chunks = (chunk_from_payload(r.id, r.payload) for r in records)
        return {c.id: c for c in chunks}

    def dense_vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        shard = self._require()
        if shard is None or not chunk_ids:
            return {}
        by_point = {point_id(c): c for c in chunk_ids}
        records = shard.retrieve(list(by_point), False, True)
        return {by_point[str(r.id)]: dense_of(r.vector) for r in records if str(r.id) in by_point}

    def search_many(self, requests: Sequence[SearchRequest]) -> list[list[Hit]]:
        """In process there is no round trip to save: the searches run one after the other."""
        return [self.search(r) for r in requests]

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


def _is_lock_error(exc: Exception) -> bool:
    """Whether the engine refused the folder because another process holds its lock."""
    text = str(exc)
    return "WouldBlock" in text or "lock" in text.lower()


def _lock_holder(wal: Path) -> str:
    """` (process 1234: ragcli chat)` for the process holding the shard's WAL lock, from /proc/locks; or ''."""
    try:
        inode = wal.stat().st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            # "1: FLOCK  ADVISORY  WRITE 23256 fe:00:2170976 0 EOF": pid, then major:minor:inode
            if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
                pid = parts[4]
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f" (process {pid}: {_short_command(cmd)})"
    except (OSError, ValueError):  # not Linux, or the process just ended
        pass
    return ""


def _short_command(cmd: str) -> str:
    words = cmd.split()
    for i, w in enumerate(words):  # `python .../bin/ragcli query ...` -> `ragcli query`
        if w.endswith(("/ragcli", "ragcli")) or (
            w == "-m" and i + 1 < len(words) and words[i + 1] == "ragcli"
        ):
            rest = words[i + 2 :] if w == "-m" else words[i + 1 :]
            return " ".join(["ragcli", *rest[:1]])
    return " ".join(words)[:60]
