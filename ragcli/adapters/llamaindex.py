"""LlamaIndex adapters: a retriever (ragcli's filtered hybrid search + rerank) and a node postprocessor (ragcli's
rerank + token-budgeted packing), for use in a LlamaIndex query engine.

    from llama_index.core.query_engine import RetrieverQueryEngine
    stages = Stages.from_config(load_config("local"))
    engine = RetrieverQueryEngine.from_args(
        RagcliRetriever(stages, tenant="acme", where="year >= 2020"),
        llm=my_llm,  # set it: LlamaIndex's default LLM is a paid API
        node_postprocessors=[RagcliPackingPostprocessor(stages, budget_tokens=512)],
    )

The tenant scope of the config (`retrieval.tenant`) is always ANDed in: a `where` can only narrow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import PrivateAttr

from ragcli.adapters.packed_blocks import chunk_metadata, chunk_of, pack, rerank, search
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.filters import Filter
from ragcli.types import Hit


def _node(hit: Hit, text: str | None = None, number: int | None = None) -> NodeWithScore:
    meta = chunk_metadata(hit.chunk)
    if number is not None:
        meta["citation"] = number
    node = TextNode(id_=hit.chunk.id, text=hit.chunk.text if text is None else text, metadata=meta)
    return NodeWithScore(node=node, score=hit.score)


class RagcliRetriever(BaseRetriever):
    """ragcli's search (dense, sparse or hybrid as configured), filters, tenant scope and rerank, as nodes."""

    def __init__(
        self,
        stages: Stages,
        *,
        where: str | Mapping[str, Any] | Filter | None = None,
        tenant: str = "",
        top_k: int | None = None,
        **kwargs: Any,
    ) -> None:
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        super().__init__(**kwargs)
        self._stages = stages
        self._where = where
        self._tenant = tenant
        self._top_k = top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = search(
            self._stages, query_bundle.query_str, where=self._where, tenant=self._tenant, top_k=self._top_k
        )
        return [_node(h) for h in hits]


class RagcliPackingPostprocessor(BaseNodePostprocessor):
    """Reranks nodes from any retriever with ragcli's reranker (if configured) and packs them into a token budget:
    the nodes that come out are the sources that fit, trimmed to the sentences that bear on the query when the
    config selects sentences, each with its citation number."""

    budget_tokens: int | None = None
    _stages: Stages = PrivateAttr()

    def __init__(self, stages: Stages, *, budget_tokens: int | None = None, **kwargs: Any) -> None:
        if budget_tokens is not None and budget_tokens < 16:
            raise ValueError(f"budget_tokens must be >= 16, got {budget_tokens}")
        super().__init__(budget_tokens=budget_tokens, **kwargs)
        self._stages = stages

    @classmethod
    def class_name(cls) -> str:
        return "RagcliPackingPostprocessor"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("RagcliPackingPostprocessor needs the query (a QueryBundle) to rerank and pack")
        question = query_bundle.query_str
        hits = [
            Hit(chunk_of(n.node.get_content(), n.node.metadata, n.node.node_id), float(n.score or 0.0))
            for n in nodes
        ]
        blocks = pack(self._stages, question, rerank(self._stages, question, hits), self.budget_tokens)
        return [_node(b.hit, b.text, b.number) for b in blocks]
