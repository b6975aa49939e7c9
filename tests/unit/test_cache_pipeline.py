"""The answer cache in the query path: lookup before retrieval, store after an answer, ledger rows, scopes."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import parse_config
from ragcli.generation.cache_build import invalidate_cited
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages
from ragcli.types import Message

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
FILES = [SAMPLES / "travel-policy.md", SAMPLES / "security-handbook.md", SAMPLES / "onboarding.txt"]


def _stages(cache: dict[str, Any]) -> Stages:
    cfg = parse_config(
        {
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "filterable": {"department": "keyword", "year": "integer"},
            "embedder": {"type": "hash", "dim": 64},
            "retrieval": {"top_k": 3},
            "packing": {"budget_tokens": 300},
            "llm": {"type": "scripted", "replies": ["The limit is 250 euros [1]."]},
            "cache": {"enabled": True, **cache},
        }
    )
    s = Stages.from_config(cfg, parser=PlainTextParser())
    assert not ingest(FILES, s).failed
    return s


@pytest.fixture
def stages() -> Iterator[Stages]:
    s = _stages({"semantic": "cosine", "cosine_threshold": 0.8})
    yield s
    s.close()


def _llm_calls(stages: Stages) -> int:
    llm = stages.llm
    assert isinstance(llm, ScriptedLLM)
    return len(llm.prompts)


def test_second_ask_is_a_hit_with_a_zero_dollar_row_and_savings(stages: Stages) -> None:
    first = answer("What is the hotel limit in Paris?", stages)
    assert "cache_store" in [t.stage for t in first.trace] and _llm_calls(stages) == 1
    again = answer("what is the hotel limit in paris", stages)
    assert again.text == first.text and again.citations == first.citations
    assert [t.stage for t in again.trace] == ["cache"] and _llm_calls(stages) == 1
    hit = again.trace[0].detail
    assert hit["tier"] == "exact" and hit["cached_question"] == "What is the hotel limit in Paris?"
    rows = [r for r in stages.ledger.rows() if r.query_id == again.query_id]
    assert len(rows) == 1 and rows[0].cached and rows[0].usd == 0.0 and rows[0].lever == "cache"
    assert stages.answer_cache.meta.stats(0).exact_hits == 1


def test_no_cache_option_and_no_answer_bypass(stages: Stages) -> None:
    answer("What is the hotel limit in Paris?", stages)
    answer("What is the hotel limit in Paris?", stages, QueryOptions(no_cache=True))
    assert _llm_calls(stages) == 2
    ans = answer("What is the hotel limit in Paris?", stages, QueryOptions(no_answer=True))
    assert "cache" not in [t.stage for t in ans.trace]


def test_history_is_skipped_unless_a_standalone_form_is_given(tmp_path: Path) -> None:
    hist = [Message("user", "Tell me about travel."), Message("assistant", "Sure.")]
    s = _stages({"history": "standalone"})
    try:
        ans = answer("and in Paris?", s, QueryOptions(history=hist))
        assert ans.trace[0].stage == "cache_lookup" and ans.trace[0].detail["skipped"]
        answer("and in Paris?", s, QueryOptions(history=hist, standalone_question="Hotel limit in Paris?"))
        hit = answer("Hotel limit in Paris?", s)
        assert hit.trace[0].stage == "cache"
    finally:
        s.close()


def test_reingest_hook_drops_entries_citing_replaced_chunks(stages: Stages) -> None:
    first = answer("What is the hotel limit in Paris?", stages)
    assert invalidate_cited(stages.config, [first.citations[0].chunk_id]) == 1
    answer("What is the hotel limit in Paris?", stages)
    assert _llm_calls(stages) == 2


def test_never_served_across_tenants_or_filters_randomised() -> None:
    """A cosine threshold of -1 serves any candidate of the same scope: only the scope can stop a hit."""
    s = _stages({"semantic": "cosine", "cosine_threshold": -1.0})
    rng = random.Random(5)
    tenants = ["", "acme", "globex"]
    wheres = [None, "department = 'finance'", "department = 'it'", "year >= 2020"]
    questions = ["What is the hotel limit?", "How long must passwords be?", "Who do I ask on day one?"]
    answered: dict[tuple[str, str | None], str] = {}
    try:
        for _ in range(60):
            tenant, where, q = rng.choice(tenants), rng.choice(wheres), rng.choice(questions)
            ans = answer(q, s, QueryOptions(tenant=tenant, where=where))
            cache_rows = [t for t in ans.trace if t.stage == "cache"]
            if (tenant, where) in answered:
                # same scope: the permissive threshold serves whatever this scope cached
                assert cache_rows, (tenant, where)
                assert cache_rows[0].detail["cached_question"] in answered.values()
                entry = s.answer_cache.meta.get([str(cache_rows[0].detail["entry"])])[0]
                assert entry.scope.tenant.startswith(f"{tenant}|") or entry.scope.tenant == tenant
                assert (entry.scope.filter != "") == (where is not None)
            else:
                assert not cache_rows, f"served across scopes: {(tenant, where)} got {cache_rows}"
                if ans.citations:
                    answered[(tenant, where)] = q
    finally:
        s.close()


def test_reingesting_a_changed_file_drops_the_answers_that_cited_it(tmp_path: Path) -> None:
    doc = tmp_path / "policy.md"
    doc.write_text("# Hotels\n\nThe hotel limit in Paris is 250 euros per night.\n")
    s = _stages({"semantic": "off"})
    try:
        assert not ingest([doc], s).failed
        first = answer("What is the hotel limit in Paris?", s, QueryOptions(where=None))
        assert any(c.source.endswith("policy.md") for c in first.citations)
        doc.write_text("# Hotels\n\nThe hotel limit in Paris is 300 euros per night from 2027.\n")
        assert not ingest([doc], s).failed  # the ingest pipeline calls the cache's invalidation hook
        calls = _llm_calls(s)
        answer("What is the hotel limit in Paris?", s)
        assert _llm_calls(s) == calls + 1  # a miss: the old answer cited a replaced chunk
    finally:
        s.close()
