"""The LlamaIndex adapters inside LlamaIndex's own query engine and index (fakes: hash embedder, scripted LLM;
LlamaIndex's MockLLM and MockEmbedding, so nothing reaches a paid API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import TextNode

from ragcli.adapters.llamaindex import RagcliPackingPostprocessor, RagcliRetriever
from ragcli.pipelines.stages import Stages
from tests.unit.gateway_support import make_gateway


@pytest.fixture
def stages(tmp_path: Path) -> Iterator[Stages]:
    built = make_gateway(tmp_path)
    yield built.stages
    built.gateway.state.close()


def test_retriever_in_a_query_engine_with_the_packing_postprocessor(stages: Stages) -> None:
    retriever = RagcliRetriever(stages, where={"tenant": "acme"}, top_k=4)
    engine = RetrieverQueryEngine.from_args(
        retriever,
        llm=MockLLM(max_tokens=8),
        node_postprocessors=[RagcliPackingPostprocessor(stages, budget_tokens=40)],
    )
    response = engine.query("What is the hotel limits rule?")
    nodes = response.source_nodes
    assert nodes and all(n.node.metadata["tenant"] == "acme" for n in nodes)
    assert [n.node.metadata["citation"] for n in nodes] == list(range(1, len(nodes) + 1))
    assert sum(stages.llm.count_tokens(n.node.get_content()) for n in nodes) <= 40  # headers count too
    assert any(r.stage == "embed_query" for r in stages.ledger.rows())  # billed like a ragcli query


def test_retriever_cannot_widen_the_config_tenant_scope(tmp_path: Path) -> None:
    built = make_gateway(tmp_path, retrieval={"top_k": 8, "tenant": {"tenant": "globex"}})
    nodes = RagcliRetriever(built.stages, where="tenant = 'acme' or tenant = 'globex'").retrieve("rule")
    assert nodes and {n.node.metadata["tenant"] for n in nodes} == {"globex"}
    built.gateway.state.close()


def test_postprocessor_over_a_llamaindex_vector_index(stages: Stages) -> None:
    texts = [
        f"The hotel limit in city {i} is {100 + i} euros. Unrelated filler sentence number {i}."
        for i in range(6)
    ]
    index = VectorStoreIndex(
        [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(texts)], embed_model=MockEmbedding(embed_dim=8)
    )
    nodes = index.as_retriever(similarity_top_k=6).retrieve("hotel limit")
    post = RagcliPackingPostprocessor(stages, budget_tokens=50)
    out = post.postprocess_nodes(nodes, query_str="hotel limit")
    assert 0 < len(out) < 6  # the budget keeps some sources, not all
    assert {n.node.node_id for n in out} <= {f"n{i}" for i in range(6)}
    with pytest.raises(ValueError, match="budget_tokens"):
        RagcliPackingPostprocessor(stages, budget_tokens=3)
