"""build_llm / build_packer and the scripted fake LLM."""

from __future__ import annotations

import pytest

from ragcli.config import PipelineConfig, parse_config
from ragcli.cost.prices import PriceTable
from ragcli.generation.build import build_llm, build_packer, llama_cpp_available
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.generation.token_budget_packer import TokenBudgetPacker
from ragcli.types import Completion, Message


def test_scripted_llm_records_prompts_and_counts_words() -> None:
    llm = ScriptedLLM(["first answer [1]", "second"], context_window=100)
    msgs = [Message("system", "be brief"), Message("user", "what is x")]
    c1 = llm.complete(msgs, max_tokens=2)
    c2 = llm.complete(msgs, max_tokens=10)
    assert c1.text == "first answer" and c2.text == "second"
    assert llm.prompts == [msgs, msgs] and llm.max_tokens == [2, 10] and llm.last_prompt == msgs
    assert c1.usage.input_tokens == 5 and c1.usage.output_tokens == 2 and c1.usage.usd == 0.0
    assert llm.count_tokens("a b  c") == 3 and not llm.token_count_is_estimate
    pieces = list(llm.stream(msgs, max_tokens=10))
    assert (
        isinstance(pieces[-1], Completion)
        and "".join(p for p in pieces[:-1] if isinstance(p, str)) == "first answer [1]"
    )


def test_scripted_llm_validates() -> None:
    with pytest.raises(ValueError, match="at least one reply"):
        ScriptedLLM([])


def test_build_scripted_and_packer_from_config() -> None:
    cfg = parse_config(
        {
            "llm": {"type": "scripted", "replies": ["hi"]},
            "packing": {"select_sentences": True, "order": "relevance", "fill": "rank"},
        }
    )
    llm = build_llm(cfg, PriceTable.load(cfg.cost))
    assert isinstance(llm, ScriptedLLM) and llm.complete([Message("user", "q")], max_tokens=5).text == "hi"
    packer = build_packer(cfg, llm)
    assert isinstance(packer, TokenBudgetPacker)
    assert packer.select_sentences and packer.order == "relevance" and packer.fill == "rank"
    assert packer.count("one two three") == 3  # the LLM's own counter


def test_default_llm_is_local_and_loads_nothing() -> None:
    cfg = PipelineConfig()
    llm = build_llm(cfg, PriceTable.load(cfg.cost))
    expected = "LlamaCppLLM" if llama_cpp_available() else "TransformersLLM"
    assert type(llm).__name__ == expected
    assert llm.model_name == "smollm2-135m-instruct"
    assert getattr(llm, "_llama", None) is None and getattr(llm, "_model", None) in (
        None,
        "smollm2-135m-instruct",
    )


def test_openai_llm_builds_without_key_or_network(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = parse_config(
        {"llm": {"type": "openai", "model": "gpt-4o-mini"}, "cost": {"max_usd_per_query": 0.01}}
    )
    llm = build_llm(cfg, PriceTable.load(cfg.cost))
    assert llm.model_name == "gpt-4o-mini" and llm.context_window == 128000
    assert llm.estimate([], 10).usd is not None  # priced, so the query budget can check it
