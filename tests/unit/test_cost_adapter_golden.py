"""Golden pricing through the adapters: the recorded provider responses go through `OpenAICompatibleLLM` and
`AnthropicLLM` (fake clients returning the SDKs' own objects); a stream bills what the same call unstreamed bills."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import CostConfig, PriceOverride
from ragcli.cost.prices import PriceTable
from ragcli.types import Completion, Message

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
pytest.importorskip("genai_prices")

from ragcli.generation.anthropic_llm import AnthropicLLM  # noqa: E402
from ragcli.generation.openai_compatible_llm import OpenAICompatibleLLM  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "provider_usage"
MSGS = [
    Message("system", "Answer from the sources."),
    Message("user", "Sources:\n[1] a.md\nParis.\n\nQuestion: capital?"),
]


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def lines(name: str) -> list[Any]:
    return [json.loads(x) for x in (FIX / name).read_text().splitlines() if x.strip()]


class FakeOpenAI:
    """`client.chat.completions.create`: the recorded completion, or its recorded stream of chunks."""

    def __init__(self, whole: str, stream: str) -> None:
        self.whole, self.stream = whole, stream
        self.chat = self
        self.completions = self
        self.requests: list[dict[str, Any]] = []

    def create(self, **kw: Any) -> Any:
        self.requests.append(kw)
        if kw.get("stream"):
            return iter([openai.types.chat.ChatCompletionChunk.model_validate(c) for c in lines(self.stream)])
        return openai.types.chat.ChatCompletion.model_validate(load(self.whole))


class FakeAnthropic:
    def __init__(self, whole: str, stream: str) -> None:
        self.whole, self.stream = whole, stream
        self.messages = self
        self.requests: list[dict[str, Any]] = []

    def create(self, **kw: Any) -> Any:
        self.requests.append(kw)
        if kw.get("stream"):
            from pydantic import TypeAdapter

            events = TypeAdapter(anthropic.types.RawMessageStreamEvent)
            return iter([events.validate_python(e) for e in lines(self.stream)])
        return anthropic.types.Message.model_validate(load(self.whole))


def final(pieces: Iterator[str | Completion]) -> Completion:
    return [p for p in pieces if isinstance(p, Completion)][-1]


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    deepseek = PriceOverride(input=0.28, cached_input=0.028, output=0.42, batch_discount=0)
    return PriceTable.load(
        CostConfig(
            use_litellm_prices=False, prices={"deepseek-chat": deepseek, "deepseek-reasoner": deepseek}
        )
    )


def test_openai_cached_call_streamed_and_not(prices: PriceTable) -> None:
    llm = OpenAICompatibleLLM("gpt-4o-mini", prices)
    llm._client = FakeOpenAI("openai_chat_cached.json", "openai_chat_cached_stream.jsonl")
    whole = llm.complete(MSGS, max_tokens=400)
    streamed = final(llm.stream(MSGS, max_tokens=400))
    want = ((2006 - 1920) * 0.15 + 1920 * 0.075 + 300 * 0.60) / 1e6
    assert whole.usage.usd == pytest.approx(want) and streamed.usage.usd == pytest.approx(want)
    assert streamed.usage == whole.usage
    assert llm._client.requests[-1]["stream_options"] == {
        "include_usage": True
    }  # usage asked on every stream


def test_openai_reasoning_through_the_adapter(prices: PriceTable) -> None:
    llm = OpenAICompatibleLLM("o4-mini", prices)
    llm._client = FakeOpenAI("openai_chat_reasoning.json", "openai_chat_cached_stream.jsonl")
    u = llm.complete(MSGS, max_tokens=4000).usage
    assert u.reasoning_tokens == 1600 and u.usd == pytest.approx((1532 * 1.10 + 1876 * 4.40) / 1e6)


def test_openai_compatible_server_deepseek_streamed_reasoner(prices: PriceTable) -> None:
    llm = OpenAICompatibleLLM(
        "deepseek-reasoner", prices, base_url="https://api.deepseek.example/v1", api_key_env=None
    )
    llm._client = FakeOpenAI("deepseek_chat_cached.json", "deepseek_reasoner_stream.jsonl")
    c = final(llm.stream(MSGS, max_tokens=800))
    assert c.text == "Paris [1]." and c.usage.reasoning_tokens == 380
    assert c.usage.usd == pytest.approx((1500 * 0.28 + 420 * 0.42) / 1e6)
    llm = OpenAICompatibleLLM(
        "deepseek-chat", prices, base_url="https://api.deepseek.example/v1", api_key_env=None
    )
    llm._client = FakeOpenAI("deepseek_chat_cached.json", "deepseek_reasoner_stream.jsonl")
    assert llm.complete(MSGS, max_tokens=800).usage.usd == pytest.approx(
        (220 * 0.28 + 1280 * 0.028 + 180 * 0.42) / 1e6
    )


def test_anthropic_cache_read_streamed_and_not(prices: PriceTable) -> None:
    llm = AnthropicLLM("claude-sonnet-4-5", prices)
    llm._client = FakeAnthropic("anthropic_message_cache_read.json", "anthropic_cache_read_stream.jsonl")
    whole = llm.complete(MSGS, max_tokens=400)
    streamed = final(llm.stream(MSGS, max_tokens=400))
    want = (22 * 3.0 + 3100 * 0.30 + 240 * 15.0) / 1e6
    assert whole.usage.usd == pytest.approx(want) and streamed.usage.usd == pytest.approx(want)
    assert (streamed.usage.input_tokens, streamed.usage.cached_tokens, streamed.usage.output_tokens) == (
        3122,
        3100,
        240,
    )


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("anthropic_message_cache_write_5m.json", (20 * 3.0 + 3100 * 3.75 + 250 * 15.0) / 1e6),
        ("anthropic_message_cache_write_1h.json", (20 * 3.0 + 3100 * 6.0 + 250 * 15.0) / 1e6),
        ("anthropic_message_uncached.json", (1850 * 3.0 + 210 * 15.0) / 1e6),
    ],
)
def test_anthropic_cache_writes_through_the_adapter(prices: PriceTable, name: str, want: float) -> None:
    llm = AnthropicLLM("claude-sonnet-4-5", prices)
    llm._client = FakeAnthropic(name, "anthropic_cache_read_stream.jsonl")
    assert llm.complete(MSGS, max_tokens=400).usage.usd == pytest.approx(want)


def test_anthropic_long_stable_prefix_gets_a_cache_breakpoint(prices: PriceTable) -> None:
    llm = AnthropicLLM("claude-sonnet-4-5", prices)
    fake = FakeAnthropic("anthropic_message_cache_write_5m.json", "anthropic_cache_read_stream.jsonl")
    llm._client = fake
    long_system = "Answer only from the numbered sources and cite them. " * 150  # well over 1,024 tokens
    llm.complete([Message("system", long_system), MSGS[1]], max_tokens=50)
    req = fake.requests[-1]
    assert req["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in req["messages"][-1]["content"][0]  # the question is never cached
    llm.complete(MSGS, max_tokens=50)  # a short prompt: plain strings, no premium paid
    assert fake.requests[-1]["system"] == "Answer from the sources."
