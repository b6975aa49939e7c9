"""The compression step and follow-up retrieval in the query path: plumbing on fakes (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.generation.build import build_compressor
from ragcli.generation.compression_types import CompressionTarget
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.generation.sentence_compressor import SentenceCompressor
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _stages(compression: dict[str, object]) -> Stages:
    cfg = parse_config(
        {
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "retrieval": {"top_k": 4},
            "packing": {"budget_tokens": 600},
            "compression": compression,
            "llm": {"type": "scripted", "replies": ["The limit is 250 euros [1]."]},
        }
    )
    s = Stages.from_config(cfg, parser=PlainTextParser())
    report = ingest(
        [SAMPLES / "travel-policy.md", SAMPLES / "security-handbook.md", SAMPLES / "onboarding.txt"], s
    )
    assert not report.failed
    return s


@pytest.mark.parametrize("ratio", [2.0, 4.0])
def test_compress_step_shrinks_the_context_to_the_ratio(ratio: float) -> None:
    plain = _stages({"type": "none"})
    squeezed = _stages({"type": "sentences", "ratio": ratio, "min_tokens": 0})
    try:
        q = "What is the hotel limit in Paris?"
        before = answer(q, plain, QueryOptions(no_answer=True))
        after = answer(q, squeezed, QueryOptions(no_answer=True))
        step = next(t for t in after.trace if t.stage == "compress")
        assert step.detail["context_before"] == before.prompt_tokens["context"]
        assert after.prompt_tokens["context"] == step.detail["context_after"]
        assert after.prompt_tokens["context"] <= before.prompt_tokens["context"] / ratio
        assert step.detail["protected_kept"] is not None
        # every citation left points at a block still in the prompt
        text = after.prompt[-1].content
        assert all(f"[{c.number}] " in text for c in after.citations)
        assert "compress" not in [r.stage for r in squeezed.ledger.rows()]  # free: no ledger row
    finally:
        plain.close()
        squeezed.close()


def test_compression_is_off_by_default_and_in_local() -> None:
    assert build_compressor(parse_config({}), ScriptedLLM().count_tokens) is None
    comp = build_compressor(parse_config({"compression": {"type": "sentences"}}), ScriptedLLM().count_tokens)
    assert isinstance(comp, SentenceCompressor)


def test_retrieval_query_replaces_the_search_text_not_the_question() -> None:
    s = _stages({"type": "none"})
    try:
        q = "Which one applies there?"
        ans = answer(q, s, QueryOptions(no_answer=True, retrieval_query=q + " hotel limit Paris"))
        assert ans.question == q and q in ans.prompt[-1].content
        assert "hotel limit Paris" not in ans.prompt[-1].content
    finally:
        s.close()


def test_a_kept_sentence_keeps_its_source_header_and_citation() -> None:
    # the packed source holds its document's sections (blank lines inside): the sentence that answers is in a
    # later section, and its `[n]` header must still come with it, or the answer loses its citation
    s = _stages({"type": "sentences", "ratio": 3.0, "min_tokens": 0})
    try:
        ans = answer("What is the hotel limit per night in Paris?", s, QueryOptions(no_answer=True))
        text = ans.prompt[-1].content
        assert "250 euros" in text
        cited = [c for c in ans.citations if "travel-policy" in c.source]
        assert cited and f"[{cited[0].number}] " in text
    finally:
        s.close()


def test_sources_with_sections_are_one_block_each() -> None:
    packed = (
        "[1] policy.md | Travel\nHotels\n\nThe hotel limit is 180 euros. In Paris it is 250 euros.\n\n"
        "Meals\n\nMeals are paid up to 60 euros a day. Alcohol is not paid.\n\n"
        "[2] handbook.md | Security\nLaptops lock after five minutes. Passwords rotate yearly."
    )
    comp = SentenceCompressor(lambda t: len(t.split()))
    out = comp.compress("hotel limit in Paris", packed, CompressionTarget(tokens=24)).text
    assert out.startswith("[1] policy.md | Travel\n") and "250 euros" in out
    # a section's heading is not content: it never fills the budget's rest on its own
    assert "Hotels" not in out and "Meals" not in out.replace("Meals are", "")
    # the retriever's scores line up with the sources, not with the sections
    steered = comp.compress("", packed, CompressionTarget(tokens=12), block_scores=[0.0, 1.0]).text
    assert steered.startswith("[2] handbook.md")


def test_a_source_sent_whole_is_marked_in_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragcli.generation.unit_model import UnitModel

    monkeypatch.setattr(UnitModel, "multi_hop", lambda self, question, vector=None: 0.0)  # sure: single-hop
    s = _stages(
        {
            "type": "sentences",
            "target_tokens": 20,
            "min_tokens": 0,
            "unit_model": "packaged:qa-units",
            "whole_source_tokens": 400,
        }
    )
    try:
        got = answer("What is the hotel limit in Paris?", s, QueryOptions(no_answer=True))
        step = next(t for t in got.trace if t.stage == "compress")
        assert step.detail["whole_source"] is True
        assert step.detail["context_after"] > 20  # one source whole, over the 20-token target
        assert len(got.citations) == 1 and f"[{got.citations[0].number}] " in got.prompt[-1].content
    finally:
        s.close()


def test_block_similarity_is_the_dense_search_score() -> None:
    from ragcli.pipelines.compress_step import block_similarity
    from ragcli.retrieval.protocols import SearchRequest

    s = _stages({"type": "sentences", "target_tokens": 20})
    try:
        vector = s.embedder.embed_query("What is the hotel limit in Paris?").vectors[0].tolist()
        hits = s.store.search(SearchRequest(dense=vector, mode="dense", limit=4))
        ids = [h.chunk.id for h in hits]
        got = block_similarity(s, vector, [*ids, "gone"])
        assert got is not None and got[-1] is None  # a chunk the store no longer holds
        assert got[:-1] == pytest.approx([h.score for h in hits], abs=1e-4)
        assert block_similarity(s, None, ids) is None and block_similarity(s, vector, []) is None
        assert block_similarity(s, vector[:8], ids) == [None] * len(ids)  # another embedder's length
    finally:
        s.close()
