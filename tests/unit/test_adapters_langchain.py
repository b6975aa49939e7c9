"""The LangChain adapters with langchain-core's own objects: a retriever in an LCEL chain with a fake chat model,
and the compressor packing documents from any retriever (fakes: hash embedder, scripted LLM)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from ragcli.adapters.langchain import RagcliCompressor, RagcliRetriever
from ragcli.pipelines.stages import Stages
from tests.unit.gateway_support import make_gateway


@pytest.fixture
def stages(tmp_path: Path) -> Iterator[Stages]:
    built = make_gateway(tmp_path)
    yield built.stages
    built.gateway.state.close()


def test_retriever_and_compressor_in_an_lcel_chain(stages: Stages) -> None:
    retriever = RagcliRetriever(stages=stages, where="tenant = 'initech'", top_k=4)
    compressor = RagcliCompressor(stages=stages, budget_tokens=40)
    seen: list[list[Document]] = []

    def packed(inputs: dict[str, object]) -> str:
        docs = compressor.compress_documents(inputs["docs"], str(inputs["question"]))  # type: ignore[arg-type]
        seen.append(list(docs))
        return "\n\n".join(f"[{d.metadata['citation']}] {d.page_content}" for d in docs)

    prompt = ChatPromptTemplate.from_messages([("system", "Sources:\n{context}"), ("human", "{question}")])
    chain = (
        {"docs": retriever, "question": RunnablePassthrough()}
        | RunnablePassthrough.assign(context=RunnableLambda(packed))
        | prompt
        | FakeListChatModel(responses=["It is in [1]."])
        | StrOutputParser()
    )
    assert chain.invoke("password rotation rule?") == "It is in [1]."
    docs = seen[0]
    assert docs and all(d.metadata["tenant"] == "initech" for d in docs)
    assert [d.metadata["citation"] for d in docs] == list(range(1, len(docs) + 1))


def test_compressor_packs_documents_from_anywhere(stages: Stages) -> None:
    docs = [
        Document(page_content=f"Hotel limit in city {i} is {100 + i} euros. Filler sentence {i}.", id=f"d{i}")
        for i in range(8)
    ]
    out = RagcliCompressor(stages=stages, budget_tokens=40).compress_documents(docs, "hotel limit")
    assert 0 < len(out) < 8 and {d.id for d in out} <= {f"d{i}" for i in range(8)}


def test_retriever_results_carry_scores_and_sources(stages: Stages) -> None:
    docs = RagcliRetriever(stages=stages, where={"tenant": "acme"}).invoke("laptop returns")
    assert docs and all(d.metadata["source"] and "score" in d.metadata for d in docs)
    with pytest.raises(ValueError):
        RagcliRetriever(stages=stages, top_k=0)
