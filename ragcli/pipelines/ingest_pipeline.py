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

from ragcli.errors import BackendError, ConfigError, InputError, RagError
from ragcli.generation.cache_build import invalidate_cited
from ragcli.ingest.file_checks import (
    EmptyDocumentError,
    is_sidecar,
    read_sidecar,
    skipped_in_folders,
    supported_suffixes,
)
from ragcli.ingest.heap import release_free_heap
from ragcli.ingest.ids import chunk_id, document_id, expected_chunk_ids
from ragcli.ingest.structure_chunker import embedding_text
from ragcli.pipelines.ingest_producer import Prepared, PrepareFn, prepared_files
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.payload import CORE_FIELDS, DOC_FIELDS
from ragcli.retrieval.protocols import StoredDocument
from ragcli.retrieval.sentence_vectors import SentenceVectors
from ragcli.types import Chunk, Document, FileResult, IngestReport, Metadata, MetaValue, Usage

log = logging.getLogger(__name__)
skipped_log = log.getChild("skipped")
"""Files left out of a folder walk (unsupported types): logged for library users; the CLI prints the report's
`skipped` itself and quiets this logger."""

RESERVED_FIELDS = frozenset(
    {*CORE_FIELDS, *DOC_FIELDS, "id", "breadcrumb", "content_type", "modified", "file_type"}
)
"""Payload keys the store and the pipeline write themselves; user metadata may not use them."""
BUILTIN_INDEXES = {"doc_id": "keyword", "source": "keyword", "content_type": "keyword"}
EMBED_BUFFER_CHUNKS = 512
"""Chunks per embedding call and write: gathered across small documents (bigger buffers sort better by length),
cut from big ones (so memory stays flat and an interrupted run keeps what it wrote)."""
OPTIMIZE_AFTER_CHUNKS = 5000
"""Chunks written in one run after which the store is asked to optimise its index (when it can)."""
CRASH_ENV = "RAGCLI_TEST_CRASH_AT"
"""Test hook: `upsert:N`, `delete:N` or `embed:N` ends the process (os._exit) right after the N-th such call."""
_FINGERPRINT_VERSION = "ingest-v1"


@dataclass(frozen=True)
class IngestProgress:
    """What a progress callback is told: after each file is read, and after each batch of chunks is written."""

    files_done: int
    files_total: int
    path: str
    chunks_embedded: int
    """Chunks embedded and written in this run so far."""
    chunks_done: int = 0
    """Chunks of this file that are in the store now (written in this run, or kept from an interrupted one)."""
    chunks_total: int = 0
    """Chunks of this file (0 until it is chunked)."""


ProgressFn = Callable[[IngestProgress], None]


@dataclass
class _Pending:
    """A slice of one document's chunks waiting for the embedder (a big document is written in many)."""

    n: int
    path: Path
    doc: Document
    chunks: list[Chunk]
    previous: StoredDocument | None
    total: int
    done_before: int
    """Chunks of this document already in the store before this slice (kept or written earlier)."""
    last: bool


@dataclass
class _Run:
    stages: Stages
    report: IngestReport
    breadcrumb: bool
    sparse: bool
    files_total: int = 0
    progress: ProgressFn | None = None
    pending: list[_Pending] = field(default_factory=list)
    results: dict[str, FileResult] = field(default_factory=dict)
    failed_docs: set[str] = field(default_factory=set)
    chunks_written: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    crash_at: tuple[str, int] | None = None
    sentences: SentenceVectors | None = None
    """Set when the config's fusion reads sentence features: new chunks' sentences are embedded here, once."""

    def tick(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1
        if self.crash_at and self.crash_at == (what, self.calls[what]):
            log.error("test hook %s=%s:%d: ending the process now", CRASH_ENV, what, self.calls[what])
            os._exit(77)

    def timed(self, stage: str, seconds: float) -> None:
        self.report.stage_seconds[stage] = self.report.stage_seconds.get(stage, 0.0) + seconds

    def result(self, path: Path, status: str, reason: str = "", chunks: int = 0) -> None:
        key = str(path)
        r = self.results.get(key)
        if r is None:
            r = self.results[key] = FileResult(key, status, reason, chunks)  # type: ignore[arg-type]
            self.report.files.append(r)
        else:
            r.status, r.reason, r.chunks = status, reason, chunks  # type: ignore[assignment]

    def tell(self, n: int, path: Path, done: int = 0, total: int = 0) -> None:
        if self.progress is not None:
            self.progress(IngestProgress(n, self.files_total, str(path), self.chunks_written, done, total))


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
    """Embed every buffered chunk in one call (sorted by length inside the embedder), then write slice by slice.

    A document's stale chunks (an older version's) are deleted after its last slice is written, so a run
    stopped at any point leaves the document either complete or visibly incomplete, never mixed and "done".
    """
    batch = [p for p in run.pending if p.doc.id not in run.failed_docs]
    run.pending = []
    if not batch:
        return
    stages, report = run.stages, run.report
    texts = [embedding_text(c, breadcrumb=run.breadcrumb) for p in batch for c in p.chunks]
    unique = list(dict.fromkeys(texts))  # identical chunks (boilerplate, repeated rows) are embedded once
    t0 = time.perf_counter()
    try:
        emb = stages.embedder.embed(unique)
    except BackendError as exc:
        for p in batch:
            run.failed_docs.add(p.doc.id)
            run.result(p.path, "failed", f"embedding failed: {exc}")
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
    if run.sentences is not None:  # the fusion's sentence features: embedded now rather than at a query
        t0 = time.perf_counter()
        try:
            run.sentences.matrices([c.text for p in batch for c in p.chunks])
        except BackendError as exc:  # the chunks are still searchable: the query path embeds them later
            log.warning("sentence vectors not made at ingest (%s); queries will make them", exc)
        run.timed("sentences", time.perf_counter() - t0)
    offset = 0
    for p in batch:
        idx = [row[t] for t in texts[offset : offset + len(p.chunks)]]
        offset += len(p.chunks)
        t0 = time.perf_counter()
        stages.store.upsert(p.chunks, emb.vectors[idx], [sparse_all[i] for i in idx] if sparse_all else None)
        run.tick("upsert")
        if p.last:
            _delete_stale(run, p)
        run.timed("write", time.perf_counter() - t0)
        run.chunks_written += len(p.chunks)
        if p.previous is None:
            report.chunks_added += len(p.chunks)
        else:
            report.chunks_replaced += len(p.chunks)
        report.largest_chunk_tokens = max([report.largest_chunk_tokens, *(c.tokens for c in p.chunks)])
        run.tell(p.n, p.path, p.done_before + len(p.chunks), p.total)
    # every buffer embeds in new shapes and fragments the heap: hand the freed pages back, or RSS grows per batch
    release_free_heap()


def _sentence_vectors(stages: Stages) -> SentenceVectors | None:
    """The store's sentence vectors when the config's fusion reads them; None otherwise, or when the fusion cannot
    be loaded (the query path reports that; an ingest does not need it)."""
    cfg = stages.config
    if cfg.retrieval.mode != "hybrid" or cfg.retrieval.fusion == "rrf":
        return None
    try:
        fusion = stages.fusion
        return stages.sentence_vectors if fusion is not None and fusion.uses_sentences else None
    except RagError as exc:
        log.info("no sentence vectors at ingest: %s", exc)
        return None


def _delete_stale(run: _Run, p: _Pending) -> None:
    """Delete the chunks of other versions of the document (ids not in the complete new set)."""
    if p.previous is None:
        return
    new_ids = expected_chunk_ids(p.doc.id, p.doc.content_hash, p.total)
    stale = [cid for cid in p.previous.chunk_ids if cid not in new_ids]
    if stale:
        run.stages.store.delete_chunks(stale)
        # a cached answer citing a replaced chunk is never served
        invalidate_cited(run.stages.config, stale, db=run.stages.state_db)
        run.tick("delete")


def _ledger(stages: Stages, usage: Usage, seconds: float) -> None:
    from ragcli.cost.ledger import LedgerRow

    stages.ledger.record(LedgerRow.of("embed", stages.embedder.model_name, usage, seconds, query_id=""))


def _prepare_fn(run: _Run, fingerprint: str, user_meta: Metadata) -> PrepareFn:
    """Hash, then (when the stored copy is not complete) parse and chunk one file; runs on the parse thread."""
    stages = run.stages

    def prepare(
        path: Path, prev: StoredDocument | None
    ) -> tuple[Document | None, list[Chunk], dict[str, float]]:
        secs: dict[str, float] = {}
        t0 = time.perf_counter()
        doc_hash = _doc_hash(path, fingerprint)
        secs["hash"] = time.perf_counter() - t0
        if _is_complete(prev, document_id(path), doc_hash):
            return None, [], secs
        t0 = time.perf_counter()
        doc = stages.parser.parse(path)
        secs["parse"] = time.perf_counter() - t0
        doc.content_hash = doc_hash
        doc.metadata = {**user_meta, **doc.metadata}
        t0 = time.perf_counter()
        chunks = _finish_chunks(doc, stages.chunker.chunk(doc))
        doc.elements = []  # the chunks hold the text now; a huge file's elements need not stay in memory
        secs["chunk"] = time.perf_counter() - t0
        if not chunks:
            raise EmptyDocumentError("no text left after parsing; nothing to index")
        return doc, chunks, secs

    return prepare


def _queue_document(run: _Run, item: Prepared, batch_chunks: int) -> int:
    """Queue a parsed document's chunks in slices of at most `batch_chunks`; skip chunks already stored.

    A chunk id is derived from the document's hash and the chunk's ordinal, so chunks written before an
    interruption (same file, same settings) are found by id and not embedded again. Returns chunks queued.
    """
    assert item.doc is not None
    chunks, prev = item.chunks, item.previous
    have = set(prev.chunk_ids) if prev is not None else set()
    todo = [c for c in chunks if c.id not in have]
    kept = len(chunks) - len(todo)
    run.report.chunks_resumed += kept
    if kept:
        log.info(
            "%s: %d of %d chunks stored by an earlier run; embedding the rest", item.path, kept, len(chunks)
        )
    if not todo:  # every chunk of this version is stored: only an older version's strays may remain
        _delete_stale(run, _Pending(item.n, item.path, item.doc, [], prev, len(chunks), kept, True))
        run.result(item.path, "ok", "", len(chunks))
        return 0
    run.result(item.path, "ok", "", len(chunks))  # turned to "failed" if its embedding fails
    for start in range(0, len(todo), batch_chunks):
        piece = todo[start : start + batch_chunks]
        last = start + batch_chunks >= len(todo)
        run.pending.append(
            _Pending(item.n, item.path, item.doc, piece, prev, len(chunks), kept + start, last)
        )
        if sum(len(p.chunks) for p in run.pending) >= batch_chunks:
            _flush(run)
    return len(todo)


def ingest(
    paths: Sequence[str | Path],
    stages: Stages,
    *,
    meta: Metadata | None = None,
    prune: bool = False,
    progress: ProgressFn | None = None,
    batch_chunks: int = EMBED_BUFFER_CHUNKS,
) -> IngestReport:
    """Ingest files and folders into the configured store; bad files are reported, never fatal.

    Files are parsed on a background thread while the previous ones are embedded; chunks are embedded and
    written in batches of at most `batch_chunks`, so memory stays flat on a huge file, progress moves by
    chunks, and a run that is stopped keeps what it wrote: the next run embeds only the missing chunks.

    Args:
        paths: Files and folders (walked recursively for supported types; hidden ones skipped by default).
        stages: The pipeline's stages (parser, chunker, embedder, store, ledger; sparse encoder if configured).
        meta: Metadata for every chunk of this run (on top of the config's `ingest.metadata`).
        prune: Also delete documents that are gone: stored ones under the given folders that were not seen in
            this run, and any whose source file no longer exists.
        progress: Called after each file is read and after each batch of chunks is written.
        batch_chunks: Chunks per embedding call and write (across small documents; a big one is cut).

    Returns:
        What happened to each file, chunk counts, tokens embedded and time per stage.

    Raises:
        InputError: a path does not exist or a metadata key is reserved (checked before any work).
    """
    if batch_chunks < 1:
        raise InputError(f"batch_chunks must be at least 1, got {batch_chunks}")
    t_start = time.perf_counter()
    cfg = stages.config
    files = collect_files(paths, skip_hidden=cfg.ingest.skip_hidden)
    user_meta: Metadata = {**cfg.ingest.metadata, **(meta or {})}
    _check_user_meta(user_meta)
    skipped = [
        FileResult(path, "skipped", reason)
        for path, reason in skipped_in_folders(paths, skip_hidden=cfg.ingest.skip_hidden)
    ]
    for s in skipped:
        skipped_log.warning("%s: %s", s.path, s.reason)
    crash = os.environ.get(CRASH_ENV, "")
    run = _Run(
        stages,
        IngestReport(skipped=skipped),
        cfg.ingest.chunking.breadcrumb_in_embedding,
        cfg.ingest.sparse,
        files_total=len(files),
        progress=progress,
        crash_at=(crash.split(":")[0], int(crash.split(":")[1])) if ":" in crash else None,
        sentences=_sentence_vectors(stages),
    )
    report = run.report
    store = stages.store
    store.ensure_collection(
        stages.embedder.dim, sparse=cfg.ingest.sparse, indexed_fields={**BUILTIN_INDEXES, **cfg.filterable}
    )
    stored = store.documents()
    fingerprint = _fingerprint(stages, user_meta)
    seen = {document_id(f) for f in files}
    for item in prepared_files(files, stored, _prepare_fn(run, fingerprint, user_meta)):
        for stage, secs in item.seconds.items():
            run.timed(stage, secs)
        if item.fatal is not None:
            raise item.fatal
        total = 0
        if item.status == "unchanged":
            assert item.previous is not None
            total = item.previous.expected_chunks
            run.result(item.path, "unchanged", "", total)
        elif item.status == "empty":
            run.result(item.path, "empty", item.reason)
            if item.previous is not None:  # the file now holds nothing: its old chunks are stale
                report.chunks_removed += store.delete_documents([item.doc_id])
        elif item.status == "failed":
            run.result(item.path, "failed", item.reason)
        else:
            total = len(item.chunks)
            _queue_document(run, item, batch_chunks)
        run.tell(item.n, item.path, 0, total)
    _flush(run)
    if prune:
        report.chunks_removed += _prune(stages, stored, seen, paths)
    _optimize(stages, run.chunks_written)
    report.seconds = time.perf_counter() - t_start
    return report


def _optimize(stages: Stages, written: int) -> None:
    """Compact the store's index after a large ingest (searches get faster); small ones are not worth it."""
    if written < OPTIMIZE_AFTER_CHUNKS:
        return
    t0 = time.perf_counter()
    try:
        stages.store.optimize()
    except Exception as exc:  # an optimisation is never worth failing an ingest that is already written
        log.warning("store optimisation after ingest failed (%s); searches still work", exc)
        return
    log.info("optimised the store after %d new chunks in %.1fs", written, time.perf_counter() - t0)


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
    invalidate_cited(stages.config, doc_ids=gone, db=stages.state_db)
    log.info("pruned %d documents (%d chunks)", len(gone), removed)
    return removed
