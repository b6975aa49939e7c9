"""Golden pricing tests: one provider response per usage shape, priced, against dollars worked out by hand.

Rates (dollars per million tokens) used by hand below, from the providers' price pages; they are also what
genai-prices' bundled data says (the price table's source for these models):
- gpt-4o-mini: input 0.15, cached input 0.075, output 0.60; Batch API input 0.075, output 0.30, and (the
  Batch table lists no cached rate) cached input stays 0.075.
- o4-mini: input 1.10, output 4.40.
- claude-sonnet-4-5: input 3.00, cache read 0.30, cache write 3.75 (5 minutes) / 6.00 (1 hour), output 15.00;
  the Message Batches API halves every one of them ("multipliers stack").
- text-embedding-3-small: 0.02.
- deepseek-chat (DeepSeek's page, given in the config: a config price always wins): cache miss 0.28, cache hit
  0.028, output 0.42; deepseek-reasoner the same rates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ragcli.config import CostConfig, PriceOverride
from ragcli.cost.prices import PriceTable
from ragcli.cost.provider_usage import (
    anthropic_batch_results,
    anthropic_usage,
    openai_batch_results,
    openai_usage,
)
from ragcli.types import Usage

pytest.importorskip("genai_prices", reason="genai-prices (a core dependency) is not installed")

FIX = Path(__file__).parent / "fixtures" / "provider_usage"
DEEPSEEK = PriceOverride(input=0.28, cached_input=0.028, output=0.42, batch_discount=0)


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (FIX / name).read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load(
        CostConfig(
            use_litellm_prices=False,
            prices={
                "deepseek-chat": DEEPSEEK,
                "deepseek-reasoner": DEEPSEEK,
                "my-llamacpp": PriceOverride(input=0, output=0),
            },
        )
    )


def usd(table: PriceTable, model: str, usage: Usage | None) -> float:
    assert usage is not None
    priced = table.priced(model, usage).usd
    assert priced is not None
    return priced


def mtok(*pairs: tuple[int, float]) -> float:
    return sum(n * rate for n, rate in pairs) / 1e6


# ---------------------------------------------------------------- OpenAI


def test_openai_uncached(table: PriceTable) -> None:
    body = load("openai_chat_uncached.json")
    u = openai_usage(body["usage"])
    assert u is not None and (u.input_tokens, u.cached_tokens, u.output_tokens) == (1117, 0, 46)
    assert usd(table, body["model"], u) == pytest.approx(mtok((1117, 0.15), (46, 0.60)))


def test_openai_cached_prompt_tokens_include_the_cached_ones(table: PriceTable) -> None:
    body = load("openai_chat_cached.json")
    u = openai_usage(body["usage"])
    assert u is not None and (u.input_tokens, u.cached_tokens) == (2006, 1920)
    want = mtok((2006 - 1920, 0.15), (1920, 0.075), (300, 0.60))
    assert usd(table, body["model"], u) == pytest.approx(want)
    assert want == pytest.approx(0.0003369)  # not 2006 + 1920 input tokens: no double count


def test_openai_reasoning_tokens_are_output_once(table: PriceTable) -> None:
    body = load("openai_chat_reasoning.json")
    u = openai_usage(body["usage"])
    assert u is not None and (u.output_tokens, u.reasoning_tokens) == (1876, 1600)
    assert usd(table, body["model"], u) == pytest.approx(mtok((1532, 1.10), (1876, 4.40)))


def test_openai_stream_usage_on_the_final_chunk_prices_like_the_unstreamed_call(table: PriceTable) -> None:
    chunks = lines("openai_chat_cached_stream.jsonl")
    final = [c["usage"] for c in chunks if c.get("usage")]
    assert len(final) == 1 and chunks[-1]["choices"] == []
    streamed = usd(table, chunks[-1]["model"], openai_usage(final[0]))
    whole = load("openai_chat_cached.json")
    assert streamed == pytest.approx(usd(table, whole["model"], openai_usage(whole["usage"])))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"] + " "


def test_openai_batch_and_batch_with_cache(table: PriceTable) -> None:
    results = openai_batch_results((FIX / "openai_batch_output.jsonl").read_text().splitlines())
    assert [r.custom_id for r in results] == ["q-000001", "q-000002"]  # the expired request is not billed
    assert all(r.usage.batch for r in results)
    plain, cached = (usd(table, r.model, r.usage) for r in results)
    assert plain == pytest.approx(mtok((1117, 0.075), (46, 0.30)))  # half price
    # batch + cache: cached tokens at the standard cached rate, which here equals the batch input rate;
    # neither discounted twice nor billed at the full input rate
    assert cached == pytest.approx(mtok((86, 0.075), (1920, 0.075), (300, 0.30)))


def test_openai_embeddings(table: PriceTable) -> None:
    body = load("openai_embeddings.json")
    u = openai_usage(body["usage"])
    assert u is not None and (u.input_tokens, u.output_tokens) == (812, 0)
    assert usd(table, body["model"], u) == pytest.approx(mtok((812, 0.02)))


# ---------------------------------------------------------------- Anthropic


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("anthropic_message_uncached.json", mtok((1850, 3.0), (210, 15.0))),
        ("anthropic_message_cache_write_5m.json", mtok((20, 3.0), (3100, 3.75), (250, 15.0))),
        ("anthropic_message_cache_write_1h.json", mtok((20, 3.0), (3100, 6.0), (250, 15.0))),
        ("anthropic_message_cache_read.json", mtok((22, 3.0), (3100, 0.30), (240, 15.0))),
    ],
)
def test_anthropic_input_tokens_exclude_cache_reads_and_writes(
    table: PriceTable, name: str, want: float
) -> None:
    body = load(name)
    u = anthropic_usage(body["usage"])
    raw = body["usage"]
    assert (
        u.input_tokens
        == raw["input_tokens"] + raw["cache_read_input_tokens"] + raw["cache_creation_input_tokens"]
    )
    assert u.cache_write_1h_tokens == raw["cache_creation"]["ephemeral_1h_input_tokens"]
    assert usd(table, body["model"], u) == pytest.approx(want)


def test_anthropic_stream_prices_like_the_unstreamed_call(table: PriceTable) -> None:
    events = lines("anthropic_cache_read_stream.jsonl")
    start = events[0]["message"]["usage"]
    final = next(e["usage"] for e in events if e["type"] == "message_delta")
    u = anthropic_usage(start, final)
    assert (u.input_tokens, u.cached_tokens, u.output_tokens) == (3122, 3100, 240)
    whole = load("anthropic_message_cache_read.json")
    assert usd(table, events[0]["message"]["model"], u) == pytest.approx(
        usd(table, whole["model"], anthropic_usage(whole["usage"]))
    )
    # message_start's output_tokens (1) is a running count: taking it would under-report the call
    assert anthropic_usage(start).output_tokens == 1


def test_anthropic_batch_and_batch_with_cache(table: PriceTable) -> None:
    results = anthropic_batch_results((FIX / "anthropic_batch_results.jsonl").read_text().splitlines())
    assert [r.custom_id for r in results] == ["q-000001", "q-000002"]
    plain, cached = (usd(table, r.model, r.usage) for r in results)
    assert plain == pytest.approx(mtok((1850, 3.0), (210, 15.0)) / 2)
    assert cached == pytest.approx(mtok((22, 3.0), (3100, 0.30), (240, 15.0)) / 2)  # cache rates halved too


# ---------------------------------------------------------------- OpenAI-compatible servers


def test_deepseek_cache_fields_and_config_price(table: PriceTable) -> None:
    body = load("deepseek_chat_cached.json")
    u = openai_usage(body["usage"])
    want = mtok((220, 0.28), (1280, 0.028), (180, 0.42))
    assert usd(table, body["model"], u) == pytest.approx(want)
    # older DeepSeek responses: only prompt_cache_hit_tokens / _miss_tokens
    old = openai_usage(load("deepseek_usage_hit_miss_only.json"))
    assert (
        old is not None
        and old.cached_tokens == 1280
        and usd(table, "deepseek-chat", old) == pytest.approx(want)
    )
    assert table.price("deepseek-chat").source == "config"  # type: ignore[union-attr]


def test_deepseek_reasoner_stream(table: PriceTable) -> None:
    chunks = lines("deepseek_reasoner_stream.jsonl")
    u = openai_usage(chunks[-1]["usage"])
    assert u is not None and u.reasoning_tokens == 380
    assert usd(table, "deepseek-reasoner", u) == pytest.approx(mtok((1500, 0.28), (420, 0.42)))


def test_local_server_without_cache_details(table: PriceTable) -> None:
    u = openai_usage(load("llamacpp_server_chat.json")["usage"])
    assert u is not None and (u.input_tokens, u.cached_tokens, u.output_tokens) == (402, 0, 31)
    assert usd(table, "my-llamacpp", u) == 0.0


def test_unknown_model_stays_unknown_never_zero(table: PriceTable) -> None:
    u = openai_usage(load("openai_chat_uncached.json")["usage"])
    assert u is not None and table.priced("acme-llm-9000", u).usd is None


# ---------------------------------------------------------------- the SDKs' own objects parse the same


def test_sdk_objects_parse_like_the_json() -> None:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    body = load("openai_chat_cached.json")
    typed = openai.types.chat.ChatCompletion.model_validate(body)
    assert openai_usage(typed.usage) == openai_usage(body["usage"])
    msg = load("anthropic_message_cache_write_1h.json")
    typed_msg = anthropic.types.Message.model_validate(msg)
    assert anthropic_usage(typed_msg.usage) == anthropic_usage(msg["usage"])
