"""Index a pooled question-answering corpus for `ragcli eval qa`, once per corpus and indexing config.

Each paragraph becomes a `Document` (id: the paragraph id; title and source: the paragraph's title) that the
pipeline's own chunker splits, its embedder embeds (the title on top of the embedded text, as the ingest pipeline
does with breadcrumbs) and its store holds. The stored chunk keeps the title as its source and no section path,
so the prompt header names the title once. The collection is named by a hash of the corpus and of everything
that shapes the stored vectors (embedder, chunking, sparse vectors; not payload indexes), so a second run on the same file and config reuses
it; documents already stored complete are never embedded again, which also makes an interrupted build resumable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ragcli.eval.qa_data import QADataset
from ragcli.ingest.ids import text_hash
from ragcli.types import Chunk, Document, Element

if TYPE_CHECKING:
    from ragcli.config import PipelineConfig
    from ragcli.pipelines.stages import Stages

log = logging.getLogger(__name__)

BATCH = 64


@dataclass
class IndexInfo:
    """What indexing did: the collection, its size, whether it was reused, and what it cost in time."""

    collection: str
    paragraphs: int
    chunks: int
    embedded_chunks: int
    reused: bool
    seconds: float
    tokens_embedded: int = 0
    chunk_paragraph: dict[str, str] = field(default_factory=dict, repr=False)
    """Chunk id -> paragraph id, to map citations back to gold paragraphs."""


def collection_name(dataset: QADataset, config: PipelineConfig) -> str:
    """`qa-<corpus hash>-<index config hash>`: the same corpus indexed the same way gets the same name."""
    shape = {
        "embedder": config.embedder.model_dump(mode="json", exclude={"batch_size", "device"}),
        "chunking": config.ingest.chunking.model_dump(mode="json"),
        "sparse": config.ingest.sparse,
    }
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:10]
    return f"qa-{dataset.format}-{dataset.fingerprint[:12]}-{digest}"


def paragraph_chunks(dataset: QADataset, stages: Stages) -> list[tuple[Chunk, str]]:
    """Every paragraph chunked by the pipeline's chunker: (chunk as stored, text to embed)."""
    from ragcli.ingest.structure_chunker import embedding_text

    breadcrumb = stages.config.ingest.chunking.breadcrumb_in_embedding
    out: list[tuple[Chunk, str]] = []
    for para in dataset.paragraphs.values():
        doc_hash = text_hash(f"{para.title}\x1f{para.text}")
        doc = Document(
            id=para.id,
            source=para.title,
            title=para.title,
            elements=[Element(para.text, "narrative")],
            content_type="prose",
            metadata={"content_type": "prose"},
            content_hash=doc_hash,
        )
        chunks = stages.chunker.chunk(doc)
        for c in chunks:
            meta = {**c.metadata, "doc_hash": doc_hash, "doc_chunks": len(chunks)}
            embed = embedding_text(c, breadcrumb=breadcrumb)
            out.append((replace(c, section_path=(), metadata=meta), embed))
    return out


def index_dataset(
    dataset: QADataset, stages: Stages, *, progress: Callable[[str, int, int], None] | None = None
) -> IndexInfo:
    """Write the pooled corpus into the stages' store, embedding only what is not stored complete already."""
    t0 = time.perf_counter()
    cfg = stages.config
    pairs = paragraph_chunks(dataset, stages)
    store = stages.store
    store.ensure_collection(
        stages.embedder.dim, sparse=cfg.ingest.sparse, indexed_fields=dict(cfg.filterable)
    )
    stored = store.documents()
    by_doc: dict[str, list[tuple[Chunk, str]]] = {}
    for chunk, text in pairs:
        by_doc.setdefault(chunk.doc_id, []).append((chunk, text))
    todo: list[tuple[Chunk, str]] = []
    stale: list[str] = []
    for doc_id, items in by_doc.items():
        have = stored.get(doc_id)
        want_hash = str(items[0][0].metadata["doc_hash"])
        if have is not None and have.complete and have.content_hash == want_hash:
            continue
        if have is not None:
            stale.append(doc_id)
        todo.extend(items)
    if stale:
        store.delete_documents(stale)
    tokens = 0
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        emb = stages.embedder.embed([t for _, t in batch])
        sparse = None
        if cfg.ingest.sparse and stages.sparse_encoder is not None:
            sparse = stages.sparse_encoder.encode([t for _, t in batch])
        store.upsert([c for c, _ in batch], emb.vectors, sparse)
        tokens += emb.usage.input_tokens
        if progress:
            progress("index", min(start + BATCH, len(todo)), len(todo))
    info = IndexInfo(
        collection=cfg.collection,
        paragraphs=len(dataset.paragraphs),
        chunks=len(pairs),
        embedded_chunks=len(todo),
        reused=not todo,
        seconds=time.perf_counter() - t0,
        tokens_embedded=tokens,
        chunk_paragraph={c.id: c.doc_id for c, _ in pairs},
    )
    log.info(
        "indexed %s: %d chunks, %d embedded now, %.1fs", info.collection, info.chunks, len(todo), info.seconds
    )
    return info
