"""Provider odds and ends that need no server: fallbacks, keys, budgets, Anthropic request shape."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

import pytest

from ragcli.config import CostConfig, parse_config
from ragcli.cost.prices import PriceTable
from ragcli.cost.tokens import counter_for, estimate_tokens, openai_encoding_name
from ragcli.errors import ConfigError
from ragcli.generation import build
from ragcli.types import Message

MSGS = [Message("system", "Be brief."), Message("user", "What is the capital of France?")]


def test_local_llm_falls_back_to_transformers_without_llama_cpp(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a)
    )
    cfg = parse_config({})
    with caplog.at_level("WARNING"):
        llm = build.build_llm(cfg, PriceTable.load(cfg.cost))
    assert type(llm).__name__ == "TransformersLLM" and llm.context_window == 2048
    assert "llama-cpp-python is not installed" in caplog.text and "converts the GGUF once" in caplog.text


def test_openai_encoding_choice_and_estimates() -> None:
    assert openai_encoding_name("gpt-4o-mini") == "o200k_base"
    assert openai_encoding_name("openai/gpt-4.1-nano") == "o200k_base"
    assert openai_encoding_name("gpt-3.5-turbo") == "cl100k_base"
    assert openai_encoding_name("deepseek-chat") is None
    exact = counter_for("gpt-4o-mini")
    assert not exact.estimate and exact("hello world") == 2
    assert counter_for("claude-haiku-4-5").estimate
    assert estimate_tokens("") == 0 and estimate_tokens("one two three") >= 3


class _FakeMessages:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def create(self, **req: Any) -> Any:
        self.requests.append(req)

        usage = SimpleNamespace(
            input_tokens=90, cache_read_input_tokens=10, cache_creation_input_tokens=0, output_tokens=5
        )
        return SimpleNamespace(content=[SimpleNamespace(text="Paris.")], usage=usage)


def test_anthropic_request_shape_usage_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("anthropic")
    from ragcli.generation.anthropic_llm import AnthropicLLM

    prices = PriceTable.load(CostConfig(use_litellm_prices=False))
    llm = AnthropicLLM("claude-haiku-4-5", prices, api_key_env="TEST_ANTHROPIC_KEY")
    monkeypatch.delenv("TEST_ANTHROPIC_KEY", raising=False)
    with pytest.raises(ConfigError, match="TEST_ANTHROPIC_KEY is not set"):
        llm.complete(MSGS, max_tokens=8)
    fake = _FakeMessages()
    llm._client = type("C", (), {"messages": fake})()
    c = llm.complete(MSGS, max_tokens=8)
    req = fake.requests[0]
    assert req["system"] == "Be brief." and [m["role"] for m in req["messages"]] == ["user"]
    assert c.text == "Paris." and c.usage.input_tokens == 100 and c.usage.cached_tokens == 10
    assert c.usage.usd == pytest.approx((90 * 1.0 + 10 * 0.10 + 5 * 5.0) / 1e6)
    assert llm.token_count_is_estimate and llm.context_window == 200000


def test_anthropic_estimate_prices_before_the_call() -> None:
    pytest.importorskip("anthropic")
    from ragcli.generation.anthropic_llm import AnthropicLLM

    prices = PriceTable.load(CostConfig(use_litellm_prices=False))
    est = AnthropicLLM("claude-opus-4-1", prices).estimate(MSGS, 1000)
    assert est.usd is not None and est.usd > 1000 * 75 / 1e6


def test_local_llm_constructors_validate_and_load_nothing() -> None:
    from ragcli.errors import ResourceMissing
    from ragcli.generation.llama_cpp_llm import LlamaCppLLM
    from ragcli.generation.transformers_llm import TransformersLLM

    with pytest.raises(ValueError, match="context_window"):
        LlamaCppLLM(context_window=10)
    with pytest.raises(ValueError, match="threads"):
        LlamaCppLLM(threads=0)
    with pytest.raises(ValueError, match="temperature"):
        TransformersLLM(temperature=5)
    missing = LlamaCppLLM("/nowhere/model.gguf")
    assert missing.model_name == "model.gguf" and missing.context_window == 2048
    with pytest.raises(ResourceMissing, match="not found"):
        missing.count_tokens("hello")
