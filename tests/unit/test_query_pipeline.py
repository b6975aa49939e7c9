"""The query pipeline end to end on fakes: plumbing only (hash embedder, scripted LLM, qdrant-client :memory:)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.errors import BudgetExceeded, InputError, ResourceMissing
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import NO_SOURCES_ANSWER, QueryOptions, answer
from ragcli.pipelines.stages import Stages
from ragcli.types import Completion, Message, Usage

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
    assert stages_logged.count("llm") == 1 and "embed_query" in stages_logged


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


def test_a_question_too_long_for_the_window_is_refused_by_the_library_too(stages: Stages) -> None:
    with pytest.raises(InputError, match=r"the question is too long: .* characters") as info:
        answer("why " * 5000, stages)
    assert "history" not in str(info.value)


def test_empty_collection_says_to_ingest() -> None:
    s = _stages(collection="nothing-here")
    with pytest.raises(
        InputError, match=r"collection 'nothing-here' (is empty|does not exist).*ragcli ingest"
    ):
        answer("anything", s)
    s.close()


def test_no_room_for_context_is_refused_before_the_call(stages: Stages) -> None:
    tiny = _stages(llm={"type": "scripted", "context_window": 128}, prompt={"max_output_tokens": 60})
    ingest([SAMPLES / "onboarding.txt"], tiny)
    # the question fits; with this history no context does
    history = [Message("user", "tell me everything " * 10)]
    with pytest.raises(BudgetExceeded, match="no room for context"):
        answer("What are core hours?", tiny, QueryOptions(history=history))
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
    s.given_reranker = _BrokenReranker()  # type: ignore[assignment]
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


def test_a_filter_that_matches_nothing_answers_without_calling_the_llm(stages: Stages) -> None:
    ans = answer("hotel", stages, QueryOptions(where="department = 'nobody'"))
    assert ans.text == NO_SOURCES_ANSWER and not ans.citations
    assert ans.warnings and "filter matched no chunk" in ans.warnings[0]
    assert isinstance(stages.llm, ScriptedLLM) and not stages.llm.prompts
    assert [r.stage for r in stages.ledger.rows()] == ["embed", "embed_query"]  # ingest, then the query


def test_sources_found_but_too_big_for_the_budget_say_so(stages: Stages) -> None:
    ans = answer("hotel limit", stages, QueryOptions(budget_tokens=4))
    assert ans.text == NO_SOURCES_ANSWER
    assert "none fit the 4-token context budget" in ans.warnings[0] and "--budget-tokens" in ans.warnings[0]


def test_no_sources_call_llm_keeps_the_old_behaviour() -> None:
    s = _stages(prompt={"no_sources": "call_llm"})
    ingest([SAMPLES / "travel-policy.md"], s)
    ans = answer("hotel", s, QueryOptions(where="department = 'nobody'"))
    assert ans.text == "The limit is 250 euros [1]."
    s.close()


class _PricedLLM(ScriptedLLM):
    """A scripted LLM that bills like an API model: $0.40 a call, estimated at $0.45 (or at an unknown price)."""

    def __init__(self, known: bool = True) -> None:
        super().__init__(["Paid answer [1]."], model_name="paid-model")
        self.known = known

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        return Usage(input_tokens=10, output_tokens=max_tokens, usd=0.45 if self.known else None, calls=1)

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        c = super().complete(messages, max_tokens=max_tokens)
        return Completion(c.text, c.model, Usage(c.usage.input_tokens, 0, 3, 0.40, 1), provider="test")


def test_the_query_budget_refuses_the_llm_call_and_records_it() -> None:
    s = _stages(cost={"budgets": {"per_query_usd": 0.30}})
    s.given_llm = _PricedLLM()
    ingest([SAMPLES / "travel-policy.md"], s)
    with pytest.raises(BudgetExceeded, match=r"per_query_usd \$0\.3"):
        answer("hotel limit", s)
    llm = s.llm
    assert isinstance(llm, _PricedLLM) and not llm.prompts
    rows = s.ledger.rows()
    assert [(r.stage, r.status) for r in rows][-1] == ("llm", "refused")
    assert s.ledger.usage(rows[-1].query_id).usd == 0.0
    s.close()


def test_unknown_price_with_a_daily_limit_is_refused(tmp_path: Path) -> None:
    s = _stages(cost={"budgets": {"per_day_usd": 10}, "ledger": str(tmp_path / "l.sqlite")})
    s.given_llm = _PricedLLM(known=False)
    ingest([SAMPLES / "travel-policy.md"], s)
    with pytest.raises(BudgetExceeded, match="'paid-model' has no known price"):
        answer("hotel limit", s)
    s.close()


def test_a_daily_limit_is_shared_by_queries(tmp_path: Path) -> None:
    s = _stages(cost={"budgets": {"per_day_usd": 1.0}, "ledger": str(tmp_path / "l.sqlite")})
    s.given_llm = _PricedLLM()
    ingest([SAMPLES / "travel-policy.md"], s)
    answered = 0
    with pytest.raises(BudgetExceeded, match="per_day_usd"):
        for _ in range(5):
            answer("hotel limit", s, QueryOptions(tenant="acme"))
            answered += 1
    assert answered == 2  # 2 x $0.40 spent; a third would hold $0.45 more than the $1.00 left
    assert {r.tenant for r in s.ledger.rows() if r.stage == "llm"} == {"acme"}
    s.close()


def test_stages_reject_a_misspelled_stage_name() -> None:
    cfg = parse_config({"embedder": {"type": "hash"}})
    with pytest.raises(TypeError, match=r"unknown stage\(s\) lm; stages are: .*llm"):
        Stages.from_config(cfg, lm=ScriptedLLM())
