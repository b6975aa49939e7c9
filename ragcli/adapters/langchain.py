"""LangChain adapters: a retriever (ragcli's filtered hybrid search + rerank) and a document compressor (ragcli's
rerank + token-budgeted packing), built on langchain-core's own base classes.

    stages = Stages.from_config(load_config("local"))
    retriever = RagcliRetriever(stages=stages, tenant="acme", where="year >= 2020")
    docs = retriever.invoke("What is the hotel limit?")
    packed = RagcliCompressor(stages=stages, budget_tokens=512).compress_documents(docs, "What is the hotel limit?")

The tenant scope of the config (`retrieval.tenant`) is always ANDed in: a `where` can only narrow it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from ragcli.adapters.packed_blocks import chunk_metadata, chunk_of, pack, rerank, search
from ragcli.types import Hit


def _document(hit: Hit, text: str | None = None, number: int | None = None) -> Document:
    meta = {**chunk_metadata(hit.chunk), "score": hit.score}
    if number is not None:
        meta["citation"] = number
    return Document(page_content=hit.chunk.text if text is None else text, metadata=meta, id=hit.chunk.id)


class RagcliRetriever(BaseRetriever):
    """ragcli's search (dense, sparse or hybrid as configured), filters, tenant scope and rerank, as documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stages: Any
    """A `ragcli.Stages`."""
    where: Any = None
    """A filter (expression, mapping or `Filter`), ANDed with the config's tenant scope."""
    tenant: str = ""
    top_k: int | None = Field(None, ge=1)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = search(self.stages, query, where=self.where, tenant=self.tenant, top_k=self.top_k)
        return [_document(h) for h in hits]


class RagcliCompressor(BaseDocumentCompressor):
    """Reranks documents from any retriever with ragcli's reranker (if configured) and packs them into a token
    budget: what comes out is the sources that fit, trimmed when the config selects sentences, numbered."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stages: Any
    budget_tokens: int | None = Field(None, ge=16)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        hits = [
            Hit(chunk_of(d.page_content, d.metadata, d.id), float(d.metadata.get("score") or 0.0))
            for d in documents
        ]
        blocks = pack(self.stages, query, rerank(self.stages, query, hits), self.budget_tokens)
        return [_document(b.hit, b.text, b.number) for b in blocks]
