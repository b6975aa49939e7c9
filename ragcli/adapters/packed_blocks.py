"""What the framework adapters share: ragcli's retrieve step, and the packed context split back per source."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragcli.pipelines.query_pipeline import QueryOptions, new_recorder, retrieve
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.filters import Filter
from ragcli.types import Chunk, Hit, MetaValue

DEFAULT_BUDGET_TOKENS = 1024


@dataclass(frozen=True)
class PackedBlock:
    """One source as packing kept it: the hit, the text that fits the budget (maybe trimmed), its `[n]`."""

    hit: Hit
    text: str
    number: int


def search(
    stages: Stages,
    question: str,
    *,
    where: str | Mapping[str, Any] | Filter | None = None,
    tenant: str = "",
    top_k: int | None = None,
) -> list[Hit]:
    """ragcli's retrieve step (search with the tenant scope and filters, then rerank), billed to the ledger."""
    opts = QueryOptions(where=where, top_k=top_k, tenant=tenant)
    return retrieve(question, stages, opts, new_recorder(stages, opts)).hits


def rerank(stages: Stages, question: str, hits: Sequence[Hit]) -> list[Hit]:
    """The configured reranker over hits from anywhere (no reranker: the hits as given)."""
    reranker = stages.reranker
    if reranker is None or not hits:
        return list(hits)
    return reranker.rerank(question, list(hits)).hits


def pack(stages: Stages, question: str, hits: Sequence[Hit], budget_tokens: int | None) -> list[PackedBlock]:
    """Pack hits into the budget with ragcli's packer; one block per source kept, in the packed order."""
    budget = budget_tokens or stages.config.packing.budget_tokens or DEFAULT_BUDGET_TOKENS
    context = stages.packer.pack(question, list(hits), budget)
    by_id = {h.chunk.id: h for h in hits}
    from ragcli.generation.token_budget_packer import header

    text = context.text
    starts: list[tuple[int, int, Hit]] = []
    pos = 0
    for c in context.citations:
        hit = by_id[c.chunk_id]
        head = header(c.number, hit.chunk)
        at = text.find(head, pos)
        if at < 0:  # a packer with another layout: fall back to the whole chunk
            starts = []
            break
        starts.append((at, at + len(head), hit))
        pos = at + len(head)
    if not starts:
        return [
            PackedBlock(by_id[c.chunk_id], by_id[c.chunk_id].chunk.text, c.number) for c in context.citations
        ]
    blocks = []
    for i, (_, body_start, hit) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        blocks.append(PackedBlock(hit, text[body_start:end].strip(), i + 1))
    return blocks


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """A chunk's payload as flat metadata for a host framework's node or document."""
    return {
        **chunk.metadata,
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "source": chunk.source,
        "section": chunk.breadcrumb,
        "page": chunk.page,
    }


def chunk_of(text: str, metadata: Mapping[str, Any], node_id: str | None = None) -> Chunk:
    """A chunk from a host framework's node or document (for rerank and packing of hits found elsewhere)."""
    chunk_id = str(metadata.get("chunk_id") or node_id or hashlib.sha1(text.encode()).hexdigest())
    section = str(metadata.get("section") or "")
    page = metadata.get("page")
    extra: dict[str, MetaValue] = {
        k: v
        for k, v in metadata.items()
        if k not in ("chunk_id", "doc_id", "source", "section", "page")
        and isinstance(v, str | int | float | bool)
    }
    return Chunk(
        id=chunk_id,
        doc_id=str(metadata.get("doc_id") or chunk_id),
        text=text,
        source=str(metadata.get("source") or ""),
        section_path=tuple(s for s in section.split(" > ") if s),
        page=page if isinstance(page, int) else None,
        metadata=extra,
    )
