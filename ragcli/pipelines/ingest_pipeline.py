"""The ingest pipeline: files -> parse -> logical chunks -> embed -> store, incremental and crash-safe.

Incremental: a document's hash covers its bytes, its sidecar metadata and the settings that shape its chunks
(chunking, embedder, metadata). An unchanged document whose stored chunks are exactly the complete set is
skipped without parsing. A changed one is written again under new chunk ids, then its old chunks are deleted.

Crash-safe: chunk ids are derived from (document id, document hash, ordinal), so the set of ids a complete
document must hold is known from what the store holds. A crash at any point leaves each document either
complete (skipped next time) or visibly incomplete (written again, strays deleted): a rerun ends in the state
a clean run gives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragcli.errors import BackendError, ConfigError, InputError, RagError, ResourceMissing
from ragcli.ingest.file_checks import EmptyDocumentError, is_sidecar, read_sidecar, supported_suffixes
from ragcli.ingest.ids import chunk_id, document_id, expected_chunk_ids
from ragcli.ingest.structure_chunker import embedding_text
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.payload import CORE_FIELDS, DOC_FIELDS
from ragcli.retrieval.protocols import StoredDocument
from ragcli.types import Chunk, Document, FileResult, IngestReport, Metadata, MetaValue, Usage

log = logging.getLogger(__name__)

RESERVED_FIELDS = frozenset(
    {*CORE_FIELDS, *DOC_FIELDS, "id", "breadcrumb", "content_type", "modified", "file_type"}
)
"""Payload keys the store and the pipeline write themselves; user metadata may not use them."""
BUILTIN_INDEXES = {"doc_id": "keyword", "source": "keyword", "content_type": "keyword"}
EMBED_BUFFER_CHUNKS = 512
"""Chunks gathered across documents before one embedding call: bigger buffers sort better by length."""
CRASH_ENV = "RAGCLI_TEST_CRASH_AT"
"""Test hook: `upsert:N`, `delete:N` or `embed:N` ends the process (os._exit) right after the N-th such call."""
_FINGERPRINT_VERSION = "ingest-v1"


@dataclass(frozen=True)
class IngestProgress:
    """What a progress callback is told after each file."""

    files_done: int
    files_total: int
    path: str
    chunks_embedded: int


ProgressFn = Callable[[IngestProgress], None]


@dataclass
class _Pending:
    path: Path
    doc: Document
    chunks: list[Chunk]
    previous: StoredDocument | None


@dataclass
class _Run:
    stages: Stages
    report: IngestReport
    breadcrumb: bool
    sparse: bool
    pending: list[_Pending] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    crash_at: tuple[str, int] | None = None

    def tick(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1
        if self.crash_at and self.crash_at == (what, self.calls[what]):
            log.error("test hook %s=%s:%d: ending the process now", CRASH_ENV, what, self.calls[what])
            os._exit(77)

    def timed(self, stage: str, seconds: float) -> None:
        self.report.stage_seconds[stage] = self.report.stage_seconds.get(stage, 0.0) + seconds


def collect_files(paths: Sequence[str | Path], *, skip_hidden: bool = True) -> list[Path]:
    """Every file to ingest: given files as they are, folders walked for supported types (sorted, deduplicated).

    Raises:
        InputError: a path does not exist (nothing is ingested then).
    """
    if not paths:
        raise InputError("no paths given; pass one or more files or folders to ingest")
    missing = [str(p) for p in paths if not Path(p).expanduser().exists()]
    if missing:
        raise InputError(
            f"path not found: {', '.join(missing)}; check the spelling, or pass an existing file or folder"
        )
    out: dict[Path, None] = {}
    suffixes = supported_suffixes()
    for p in paths:
        path = Path(p).expanduser().resolve()
        if path.is_file():
            out.setdefault(path, None)
            continue
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path).parts
            if skip_hidden and any(part.startswith(".") for part in rel):
                continue
            if f.is_file() and f.suffix.lower() in suffixes and not is_sidecar(f):
                out.setdefault(f, None)
    return list(out)


def parse_meta(pairs: Iterable[str]) -> Metadata:
    """`key=value` strings from the command line; numbers and true/false are typed."""
    meta: Metadata = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--meta {pair!r} is not key=value; write it like --meta team=search")
        meta[key] = _typed(raw.strip())
    return meta


def _typed(raw: str) -> MetaValue:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def _check_user_meta(meta: Metadata) -> None:
    clash = sorted(set(meta) & RESERVED_FIELDS)
    if clash:
        raise InputError(
            f"metadata keys {clash} are set by ragcli itself; rename them "
            f"(reserved: {', '.join(sorted(RESERVED_FIELDS))})"
        )


def _fingerprint(stages: Stages, user_meta: Metadata) -> str:
    cfg = stages.config
    facts = {
        "v": _FINGERPRINT_VERSION,
        "chunking": cfg.ingest.chunking.model_dump(mode="json"),
        "embedder": [stages.embedder.model_name, stages.embedder.dim],
        "parser": [type(stages.parser).__name__, cfg.ingest.parser.model_dump(mode="json")],
        "sparse": cfg.ingest.sparse,
        "meta": user_meta,
    }
    return json.dumps(facts, sort_keys=True, default=str)


def _doc_hash(path: Path, fingerprint: str) -> str:
    h = hashlib.sha256(fingerprint.encode())
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    _, sidecar = read_sidecar(path)
    h.update(sidecar)
    return h.hexdigest()[:32]


def _is_complete(prev: StoredDocument | None, doc_id: str, doc_hash: str) -> bool:
    return (
        prev is not None
        and prev.content_hash == doc_hash
        and set(prev.chunk_ids) == expected_chunk_ids(doc_id, doc_hash, prev.expected_chunks)
    )


def _finish_chunks(doc: Document, chunks: list[Chunk]) -> list[Chunk]:
    """Give chunks their final ids and the document facts the store needs to judge completeness."""
    n = len(chunks)
    return [
        dataclasses.replace(
            c,
            id=chunk_id(doc.id, doc.content_hash, i),
            ordinal=i,
            metadata={**c.metadata, "doc_hash": doc.content_hash, "doc_chunks": n},
        )
        for i, c in enumerate(chunks)
    ]


def _flush(run: _Run) -> None:
    """Embed every buffered chunk in one call (sorted by length inside the embedder), then write doc by doc."""
    if not run.pending:
        return
    stages, report = run.stages, run.report
    batch, run.pending = run.pending, []
    texts = [embedding_text(c, breadcrumb=run.breadcrumb) for p in batch for c in p.chunks]
    unique = list(dict.fromkeys(texts))  # identical chunks (boilerplate, repeated rows) are embedded once
    t0 = time.perf_counter()
    try:
        emb = stages.embedder.embed(unique)
    except BackendError as exc:
        for p in batch:
            _set_result(report, p.path, "failed", f"embedding failed: {exc}")
        return
    seconds = time.perf_counter() - t0
    run.timed("embed", seconds)
    run.tick("embed")
    report.usage = report.usage + emb.usage
    report.tokens_embedded += emb.usage.input_tokens
    _ledger(stages, emb.usage, seconds)
    row = {t: i for i, t in enumerate(unique)}
    sparse_all = None
    if run.sparse:
        encoder = stages.sparse_encoder
        if encoder is None:
            raise ConfigError(
                "ingest.sparse is true but no sparse encoder is available; set ingest.sparse: false"
            )
        t0 = time.perf_counter()
        sparse_all = encoder.encode(unique)
        run.timed("sparse", time.perf_counter() - t0)
    offset = 0
    for p in batch:
        idx = [row[t] for t in texts[offset : offset + len(p.chunks)]]
        offset += len(p.chunks)
        t0 = time.perf_counter()
        stages.store.upsert(p.chunks, emb.vectors[idx], [sparse_all[i] for i in idx] if sparse_all else None)
        run.tick("upsert")
        new_ids = {c.id for c in p.chunks}
        stale = [cid for cid in (p.previous.chunk_ids if p.previous else ()) if cid not in new_ids]
        if stale:
            stages.store.delete_chunks(stale)
            run.tick("delete")
        run.timed("write", time.perf_counter() - t0)
        if p.previous is None:
            report.chunks_added += len(p.chunks)
        else:
            report.chunks_replaced += len(p.chunks)
        report.largest_chunk_tokens = max([report.largest_chunk_tokens, *(c.tokens for c in p.chunks)])
        _set_result(report, p.path, "ok", "", len(p.chunks))


def _ledger(stages: Stages, usage: Usage, seconds: float) -> None:
    from ragcli.cost.ledger import LedgerRow

    stages.ledger.record(LedgerRow.of("embed", stages.embedder.model_name, usage, seconds, query_id=""))


def _set_result(report: IngestReport, path: Path, status: str, reason: str, chunks: int = 0) -> None:
    for r in report.files:
        if r.path == str(path):
            r.status, r.reason, r.chunks = status, reason, chunks  # type: ignore[assignment]
            return
    report.files.append(FileResult(str(path), status, reason, chunks))  # type: ignore[arg-type]


def ingest(
    paths: Sequence[str | Path],
    stages: Stages,
    *,
    meta: Metadata | None = None,
    prune: bool = False,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Ingest files and folders into the configured store; bad files are reported, never fatal.

    Args:
        paths: Files and folders (walked recursively for supported types; hidden ones skipped by default).
        stages: The pipeline's stages (parser, chunker, embedder, store, ledger; sparse encoder if configured).
        meta: Metadata for every chunk of this run (on top of the config's `ingest.metadata`).
        prune: Also delete documents that are gone: stored ones under the given folders that were not seen in
            this run, and any whose source file no longer exists.
        progress: Called after each file.

    Returns:
        What happened to each file, chunk counts, tokens embedded and time per stage.

    Raises:
        InputError: a path does not exist or a metadata key is reserved (checked before any work).
    """
    t_start = time.perf_counter()
    cfg = stages.config
    files = collect_files(paths, skip_hidden=cfg.ingest.skip_hidden)
    user_meta: Metadata = {**cfg.ingest.metadata, **(meta or {})}
    _check_user_meta(user_meta)
    crash = os.environ.get(CRASH_ENV, "")
    run = _Run(
        stages,
        IngestReport(),
        cfg.ingest.chunking.breadcrumb_in_embedding,
        cfg.ingest.sparse,
        crash_at=(crash.split(":")[0], int(crash.split(":")[1])) if ":" in crash else None,
    )
    report = run.report
    store = stages.store
    store.ensure_collection(
        stages.embedder.dim, sparse=cfg.ingest.sparse, indexed_fields={**BUILTIN_INDEXES, **cfg.filterable}
    )
    stored = store.documents()
    fingerprint = _fingerprint(stages, user_meta)
    seen: set[str] = set()
    buffered = 0
    for n, path in enumerate(files, 1):
        doc_id = document_id(path)
        seen.add(doc_id)
        prev = stored.get(doc_id)
        try:
            t0 = time.perf_counter()
            doc_hash = _doc_hash(path, fingerprint)
            run.timed("hash", time.perf_counter() - t0)
            if _is_complete(prev, doc_id, doc_hash):
                assert prev is not None
                _set_result(report, path, "unchanged", "", prev.expected_chunks)
            else:
                t0 = time.perf_counter()
                doc = stages.parser.parse(path)
                run.timed("parse", time.perf_counter() - t0)
                doc.content_hash = doc_hash
                doc.metadata = {**user_meta, **doc.metadata}
                t0 = time.perf_counter()
                chunks = _finish_chunks(doc, stages.chunker.chunk(doc))
                run.timed("chunk", time.perf_counter() - t0)
                if not chunks:
                    raise EmptyDocumentError("no text left after parsing; nothing to index")
                run.pending.append(_Pending(path, doc, chunks, prev))
                _set_result(report, path, "ok", "", len(chunks))
                buffered += len(chunks)
                if buffered >= EMBED_BUFFER_CHUNKS:
                    _flush(run)
                    buffered = 0
        except EmptyDocumentError as exc:
            _set_result(report, path, "empty", str(exc))
            if prev is not None:  # the file now holds nothing: its old chunks are stale
                report.chunks_removed += store.delete_documents([doc_id])
        except (ResourceMissing, ConfigError):
            raise
        except RagError as exc:
            _set_result(report, path, "failed", str(exc))
        except (OSError, UnicodeError) as exc:
            _set_result(report, path, "failed", f"cannot read the file ({type(exc).__name__}: {exc})")
        except Exception as exc:  # a parser bug on one odd file must not stop the batch
            log.warning("unexpected error on %s", path, exc_info=True)
            _set_result(
                report,
                path,
                "failed",
                f"could not be parsed ({type(exc).__name__}: {exc}); "
                "report this file if it opens fine elsewhere",
            )
        if progress is not None:
            progress(IngestProgress(n, len(files), str(path), report.tokens_embedded))
    _flush(run)
    if prune:
        report.chunks_removed += _prune(stages, stored, seen, paths)
    report.seconds = time.perf_counter() - t_start
    return report


def _prune(
    stages: Stages, stored: dict[str, StoredDocument], seen: set[str], roots: Sequence[str | Path]
) -> int:
    root_paths = [Path(r).expanduser().resolve() for r in roots]
    gone = []
    for doc_id, sd in stored.items():
        if doc_id in seen:
            continue
        src = Path(sd.source)
        under_root = any(src == r or r in src.parents for r in root_paths)
        if under_root or not src.exists():
            gone.append(doc_id)
    if not gone:
        return 0
    removed = stages.store.delete_documents(gone)
    log.info("pruned %d documents (%d chunks)", len(gone), removed)
    return removed
