"""The query pipeline end to end on fakes: plumbing only (hash embedder, scripted LLM, qdrant-client :memory:)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.errors import BudgetExceeded, InputError, ResourceMissing
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages
from ragcli.types import Message

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _stages(**over: object) -> Stages:
    cfg = parse_config(
        {
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "filterable": {"department": "keyword", "year": "integer"},
            "embedder": {"type": "hash", "dim": 64},
            "retrieval": {"top_k": 3},
            "packing": {"budget_tokens": 300},
            "llm": {"type": "scripted", "replies": ["The limit is 250 euros [1]."]},
            **over,
        }
    )
    return Stages.from_config(cfg, parser=PlainTextParser())


@pytest.fixture
def stages() -> Stages:
    s = _stages()
    report = ingest(
        [SAMPLES / "travel-policy.md", SAMPLES / "security-handbook.md", SAMPLES / "onboarding.txt"], s
    )
    assert not report.failed, report.failed
    yield s
    s.close()


def test_answer_has_citations_usage_trace_and_ledger_rows(stages: Stages) -> None:
    ans = answer("What is the hotel limit in Paris?", stages)
    assert ans.text == "The limit is 250 euros [1]."
    assert ans.citations and all(c.source for c in ans.citations)
    assert [t.stage for t in ans.trace] == ["embed_query", "search", "pack", "llm"]
    assert ans.prompt_tokens["total"] == sum(v for k, v in ans.prompt_tokens.items() if k != "total")
    assert ans.usage.input_tokens > 0 and ans.usage.usd == 0.0
    llm = stages.llm
    assert isinstance(llm, ScriptedLLM)
    sent = llm.prompts[-1]
    assert sent[0].role == "system" and "[1]" in sent[-1].content
    stages_logged = [r.stage for r in stages.ledger.rows()]
    assert stages_logged.count("llm") == 1 and "embed" in stages_logged


def test_no_answer_stops_before_the_llm(stages: Stages) -> None:
    ans = answer("hotel limit", stages, QueryOptions(no_answer=True))
    assert ans.text == "" and "llm" not in [t.stage for t in ans.trace]
    assert ans.prompt and ans.prompt_tokens["context"] > 0
    assert isinstance(stages.llm, ScriptedLLM) and not stages.llm.prompts


def test_budget_caps_the_context(stages: Stages) -> None:
    small = answer("hotel limit", stages, QueryOptions(no_answer=True, budget_tokens=40))
    assert small.prompt_tokens["context"] <= 40


def test_filter_narrows_to_matching_documents(stages: Stages) -> None:
    ans = answer("passwords", stages, QueryOptions(no_answer=True, where="department = 'finance'"))
    assert ans.citations and {Path(c.source).name for c in ans.citations} == {"travel-policy.md"}


def test_tenant_scope_cannot_be_widened() -> None:
    s = _stages(retrieval={"tenant": "department = 'security'"})
    ingest([SAMPLES / "travel-policy.md", SAMPLES / "security-handbook.md"], s)
    ans = answer("hotel", s, QueryOptions(no_answer=True, where="department = 'finance' or year >= 0"))
    assert all(Path(c.source).name == "security-handbook.md" for c in ans.citations)
    s.close()


def test_history_is_sent_and_counted(stages: Stages) -> None:
    history = [Message("user", "Hi there"), Message("assistant", "Hello, ask me about the handbook.")]
    ans = answer("And meals?", stages, QueryOptions(history=history))
    assert ans.prompt_tokens["history"] > 0
    assert ans.prompt[1:3] == history


def test_empty_question_is_an_input_error(stages: Stages) -> None:
    with pytest.raises(InputError, match="question is empty"):
        answer("   ", stages)


def test_empty_collection_says_to_ingest() -> None:
    s = _stages(collection="nothing-here")
    with pytest.raises(
        InputError, match=r"collection 'nothing-here' (is empty|does not exist).*ragcli ingest"
    ):
        answer("anything", s)
    s.close()


def test_no_room_for_context_is_refused_before_the_call(stages: Stages) -> None:
    tiny = _stages(llm={"type": "scripted", "context_window": 64}, prompt={"max_output_tokens": 60})
    ingest([SAMPLES / "onboarding.txt"], tiny)
    with pytest.raises(BudgetExceeded, match="no room for context"):
        answer("What are core hours?", tiny)
    tiny.close()


def test_streaming_calls_back_with_pieces(stages: Stages) -> None:
    pieces: list[str] = []
    ans = answer("hotel limit", stages, QueryOptions(on_token=pieces.append))
    assert "".join(pieces).strip() == ans.text


class _BrokenReranker:
    model_name = "missing-reranker"

    def rerank(self, query: str, hits: object) -> object:
        raise ResourceMissing("reranker 'missing-reranker' not found; train one with `ragcli train reranker`")


def test_a_reranker_that_cannot_load_is_reported_not_skipped_silently() -> None:
    s = _stages()
    s.overrides["reranker"] = _BrokenReranker()
    ingest([SAMPLES / "travel-policy.md"], s)
    ans = answer("hotel limit", s)
    assert ans.text and ans.citations
    assert ans.warnings and "missing-reranker" in ans.warnings[0]
    rerank = [t for t in ans.trace if t.stage == "rerank"]
    assert rerank and rerank[0].detail["skipped"] is True
    s.close()


def test_a_query_budget_replaces_the_config_budget(stages: Stages) -> None:
    # the config says 300; a query may ask for more (bounded by the model's window) or less
    bigger = answer("hotel limit", stages, QueryOptions(no_answer=True, budget_tokens=2000))
    pack = next(t for t in bigger.trace if t.stage == "pack")
    assert pack.detail["budget"] == 2000


def test_filter_mapping_form_is_validated_like_the_expression(stages: Stages) -> None:
    ans = answer("passwords", stages, QueryOptions(no_answer=True, where={"department": "finance"}))
    assert {Path(c.source).name for c in ans.citations} == {"travel-policy.md"}
    with pytest.raises(InputError, match="colour"):
        answer("passwords", stages, QueryOptions(no_answer=True, where={"colour": "red"}))
